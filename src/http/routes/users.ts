import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { generatePassword, hashPassword, PasswordPolicyError } from '../../auth/password.js';
import { UserError, type UserInfo } from '../../db/users.js';
import type { AppDeps } from '../app.js';
import { recordAccess } from '../audit-record.js';
import { ApiError } from '../errors.js';

const ADMIN = { access: { roles: ['admin'] as const } };
const roleList = { type: 'array', minItems: 1, maxItems: 3, uniqueItems: true, items: { type: 'string', enum: ['auditor', 'admin', 'user'] } } as const;
const addressList = { type: 'array', maxItems: 100, items: { type: 'string', minLength: 3, maxLength: 320 } } as const;
const nameParams = { type: 'object', required: ['name'], properties: { name: { type: 'string', minLength: 1, maxLength: 320 } } } as const;

function userError(err: unknown): never {
  if (err instanceof UserError) {
    throw new ApiError(err.code === 'no_such_user' ? 404 : err.code === 'user_exists' ? 409 : 400, err.code, err.message);
  }
  if (err instanceof PasswordPolicyError) throw new ApiError(400, err.code, err.message);
  throw err;
}

/** Accounts and API tokens: admin only. Every change is on the audit trail. */
export const userRoutes: FastifyPluginAsync<AppDeps> = async (app, deps) => {
  const { users, tokens } = deps;
  const mustGet = (name: string): UserInfo => {
    const u = users.get(name);
    if (!u) throw new ApiError(404, 'no_such_user', `no account ${name}`);
    return u;
  };
  /** Refuses a change that would leave no enabled admin: nobody could manage accounts any more. */
  const keepsAnAdmin = (changed: UserInfo, after: { roles?: readonly string[]; disabled?: boolean; deleted?: boolean }): void => {
    const stillAdmin = !after.deleted && !(after.disabled ?? changed.disabled) && (after.roles ?? changed.roles).includes('admin');
    if (stillAdmin) return;
    const others = users.list().some((u) => u.id !== changed.id && !u.disabled && u.roles.includes('admin'));
    if (!others) throw new ApiError(409, 'last_admin', 'that would leave no enabled admin account');
  };
  const audited = (request: FastifyRequest, action: 'user.create' | 'user.update' | 'user.delete' | 'token.create' | 'token.revoke', target: string, details: Record<string, string | number | boolean | null>) =>
    recordAccess(deps.audit, request, { action, target, outcome: 'ok', details });

  app.get('/api/users', { config: ADMIN }, async () => ({ users: users.list() }));

  app.post<{ Body: { name: string; roles: string[]; addresses?: string[]; password?: string } }>('/api/users', {
    config: ADMIN,
    schema: {
      body: {
        type: 'object', additionalProperties: false, required: ['name', 'roles'],
        properties: { name: { type: 'string', minLength: 1, maxLength: 128 }, roles: roleList, addresses: addressList, password: { type: 'string', minLength: 1, maxLength: 1024 } },
      },
    },
  }, async (request, reply) => {
    const { name, roles, addresses, password } = request.body;
    const generated = password === undefined ? generatePassword() : null;
    const hash = await hashPassword(password ?? generated!).catch(userError);
    let user: UserInfo;
    try {
      user = users.create({ name, source: 'local', roles, addresses: addresses ?? [], passwordHash: hash });
    } catch (err) {
      userError(err);
    }
    await audited(request, 'user.create', user.name, { roles: user.roles.join(','), addresses: user.addresses.join(',') });
    return reply.status(201).send({ user, ...(generated ? { password: generated } : {}) });
  });

  app.patch<{ Params: { name: string }; Body: { roles?: string[]; add_addresses?: string[]; remove_addresses?: string[]; disabled?: boolean; password?: string } }>('/api/users/:name', {
    config: ADMIN,
    schema: {
      params: nameParams,
      body: {
        type: 'object', additionalProperties: false, minProperties: 1,
        properties: { roles: roleList, add_addresses: addressList, remove_addresses: addressList, disabled: { type: 'boolean' }, password: { type: 'string', minLength: 1, maxLength: 1024 } },
      },
    },
  }, async (request) => {
    const b = request.body;
    let user = mustGet(request.params.name);
    keepsAnAdmin(user, { ...(b.roles ? { roles: b.roles } : {}), ...(b.disabled !== undefined ? { disabled: b.disabled } : {}) });
    if (b.password !== undefined && user.source !== 'local') throw new ApiError(400, 'not_local', `${user.name} signs in with the mail server's password`);
    const hash = b.password !== undefined ? await hashPassword(b.password).catch(userError) : null;
    try {
      if (b.roles) user = users.setRoles(user.id, b.roles);
      if (b.add_addresses?.length) user = users.addAddresses(user.id, b.add_addresses);
      if (b.remove_addresses?.length) user = users.removeAddresses(user.id, b.remove_addresses);
      if (b.disabled !== undefined) user = users.setDisabled(user.id, b.disabled);
      if (hash) users.setPassword(user.id, hash);
    } catch (err) {
      userError(err);
    }
    // A disabled account or a new password ends the account's sessions.
    if (b.disabled || hash) deps.sessions.deleteForUser(user.id);
    await audited(request, 'user.update', user.name, {
      ...(b.roles ? { roles: user.roles.join(',') } : {}),
      ...(b.add_addresses?.length ? { added: b.add_addresses.join(',') } : {}),
      ...(b.remove_addresses?.length ? { removed: b.remove_addresses.join(',') } : {}),
      ...(b.disabled !== undefined ? { disabled: b.disabled } : {}),
      ...(hash ? { password_changed: true } : {}),
    });
    return { user };
  });

  app.delete<{ Params: { name: string } }>('/api/users/:name', { config: ADMIN, schema: { params: nameParams } }, async (request, reply) => {
    const user = mustGet(request.params.name);
    keepsAnAdmin(user, { deleted: true });
    users.delete(user.id);
    await audited(request, 'user.delete', user.name, { roles: user.roles.join(',') });
    return reply.status(204).send();
  });

  app.get('/api/tokens', { config: ADMIN }, async () => ({ tokens: tokens.list() }));

  app.post<{ Body: { role: 'auditor' | 'admin' | 'user'; name: string; user?: string } }>('/api/tokens', {
    config: ADMIN,
    schema: {
      body: {
        type: 'object', additionalProperties: false, required: ['role', 'name'],
        properties: { role: { type: 'string', enum: ['auditor', 'admin', 'user'] }, name: { type: 'string', minLength: 1, maxLength: 100 }, user: { type: 'string', minLength: 1, maxLength: 320 } },
      },
    },
  }, async (request, reply) => {
    const { role, name } = request.body;
    if ((role === 'user') !== (request.body.user !== undefined)) throw new ApiError(400, 'bad_request', 'a user token needs "user" (the account it acts for); other tokens take none');
    const owner = request.body.user !== undefined ? mustGet(request.body.user) : null;
    const created = tokens.create({ role, name, user: owner?.id ?? null });
    await audited(request, 'token.create', created.info.id, { role, name, ...(owner ? { user: owner.name } : {}) });
    return reply.status(201).send(created);
  });

  app.delete<{ Params: { id: string } }>('/api/tokens/:id', {
    config: ADMIN,
    schema: { params: { type: 'object', required: ['id'], properties: { id: { type: 'string', pattern: '^[0-9a-f]{12}$' } } } },
  }, async (request, reply) => {
    if (!tokens.revoke(request.params.id)) throw new ApiError(404, 'not_found', `no active token ${request.params.id}`);
    await audited(request, 'token.revoke', request.params.id, {});
    return reply.status(204).send();
  });
};
