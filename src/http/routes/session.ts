import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { AppDeps } from '../app.js';
import { recordAccess } from '../audit-record.js';
import { SESSION_COOKIE, type Principal } from '../auth.js';
import { ApiError } from '../errors.js';

const whoami = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    roles: { type: 'array', items: { type: 'string' } },
    addresses: { type: 'array', items: { type: 'string' } },
    via: { type: 'string' },
    csrf: { type: ['string', 'null'] },
    expires_at: { type: ['string', 'null'] },
  },
} as const;

/** Same words for a wrong name, a wrong password, a disabled account and a wrong code: no enumeration. */
const BAD_CREDENTIALS = 'wrong username or password';

export const sessionRoutes: FastifyPluginAsync<AppDeps> = async (app, deps) => {
  const addressesOf = (p: Principal): string[] => (p.userId !== null ? (deps.users.byId(p.userId)?.addresses ?? []) : []);
  const cookieOptions = (request: FastifyRequest) => ({
    path: '/', httpOnly: true, sameSite: 'strict' as const,
    // Secure whenever the browser reached us over TLS (directly, or through a trusted TLS proxy).
    secure: request.protocol === 'https',
  });

  app.post<{ Body: { username: string; password: string; totp?: string } }>('/api/session', {
    config: { access: { public: true } },
    schema: {
      body: {
        type: 'object',
        additionalProperties: false,
        required: ['username', 'password'],
        properties: {
          username: { type: 'string', minLength: 1, maxLength: 320 },
          password: { type: 'string', minLength: 1, maxLength: 1024 },
          totp: { type: 'string', maxLength: 16 },
        },
      },
      response: { 200: whoami },
    },
  }, async (request, reply) => {
    const { username, password, totp } = request.body;
    const r = await deps.signIn.signIn({ username, password, totp, ip: request.ip });
    if (!r.ok) {
      await deps.audit.record({
        actor: username.trim().toLowerCase().slice(0, 320), role: null, source: request.ip, action: 'session.signin_failed',
        target: null, outcome: r.code === 'unavailable' ? 'failed' : 'denied', details: { reason: r.reason },
      }).catch((err: unknown) => request.log.error({ event: 'audit.write_failed', err }, 'audit entry for a failed sign-in could not be written'));
      if (r.code === 'locked' || r.code === 'slow_down') {
        const seconds = Math.max(1, Math.ceil((r.retryAfterMs ?? 1000) / 1000));
        reply.header('retry-after', String(seconds));
        throw new ApiError(429, r.code, r.code === 'locked'
          ? `too many failed sign-ins; try again in ${Math.ceil(seconds / 60)} minute(s)`
          : `too many failed sign-ins; wait ${seconds} s before the next try`);
      }
      if (r.code === 'unavailable') throw new ApiError(503, 'unavailable', 'the mail server could not check the password right now; try again later');
      if (r.code === 'totp_required') throw new ApiError(401, 'totp_required', 'enter the 6-digit code from your authenticator app');
      throw new ApiError(401, 'bad_credentials', BAD_CREDENTIALS);
    }
    const { token, session } = deps.sessions.create(r.user.id, request.ip);
    const principal: Principal = {
      via: 'session', userId: r.user.id, name: r.user.name, roles: r.user.roles, tokenId: null, csrf: session.csrf, sessionToken: token,
    };
    request.principal = principal;
    await recordAccess(deps.audit, request, { action: 'session.signin', outcome: 'ok', details: { method: r.method } });
    reply.setCookie(SESSION_COOKIE, token, { ...cookieOptions(request), maxAge: Math.floor((session.expiresAt - Date.now()) / 1000) });
    return {
      name: r.user.name, roles: r.user.roles, addresses: r.user.addresses, via: 'session', csrf: session.csrf,
      expires_at: new Date(session.expiresAt).toISOString(),
    };
  });

  app.get('/api/session', {
    config: { access: { signedIn: true } },
    schema: { response: { 200: whoami } },
  }, async (request) => {
    const p = request.principal!;
    return { name: p.name, roles: p.roles, addresses: addressesOf(p), via: p.via, csrf: p.csrf, expires_at: null };
  });

  app.delete('/api/session', {
    config: { access: { signedIn: true } },
  }, async (request: FastifyRequest, reply: FastifyReply) => {
    const p = request.principal!;
    if (p.via !== 'session' || !p.sessionToken) throw new ApiError(400, 'not_a_session', 'this request is signed in with a token, not a session; revoke tokens with DELETE /api/tokens/:id');
    deps.sessions.delete(p.sessionToken);
    await recordAccess(deps.audit, request, { action: 'session.signout', outcome: 'ok' });
    reply.clearCookie(SESSION_COOKIE, cookieOptions(request));
    return reply.status(204).send();
  });
};
