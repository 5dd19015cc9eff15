import { timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { SessionStore } from '../db/sessions.js';
import type { TokenStore } from '../db/tokens.js';
import type { Role, UserStore } from '../db/users.js';
import { ApiError } from './errors.js';

/**
 * Every route declares who may use it; a route without a rule is refused at start-up (default deny).
 * - public: anyone (health, sign-in);
 * - signedIn: any signed-in principal, whatever its roles (who am I, sign-out);
 * - roles: a principal holding at least one of them.
 */
export type Access = { public: true } | { signedIn: true } | { roles: readonly Role[] };

/** Who is asking: a bearer token or a browser session, with the roles it carries. */
export interface Principal {
  via: 'token' | 'session';
  /** The account behind it; null for an auditor/admin token that belongs to no account. */
  userId: number | null;
  /** Account name, or the token's name. */
  name: string;
  roles: Role[];
  tokenId: string | null;
  /** Session only: the value X-CSRF-Token must carry on requests that change state. */
  csrf: string | null;
  /** Session only: the cookie value, to end the session. */
  sessionToken: string | null;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    access?: Access;
  }
  interface FastifyRequest {
    principal: Principal | null;
  }
  interface FastifyInstance {
    /** Every route with its access rule, for the test that checks each one. */
    routeTable: RouteAccess[];
  }
}

export interface RouteAccess {
  method: string;
  url: string;
  access: Access;
}

export const SESSION_COOKIE = 'spindle_session';
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

export interface AuthDeps {
  tokens: TokenStore;
  users: UserStore;
  sessions: SessionStore;
}

/** Sees everything: the auditor. Everyone else with mail access is limited to their own addresses. */
export function seesAllMail(p: Principal): boolean {
  return p.roles.includes('auditor');
}

/** The account whose addresses limit what this principal may read, or null for all mail. */
export function mailScope(p: Principal): { userId: number } | null {
  if (seesAllMail(p)) return null;
  // A 'user' principal always has an account (user tokens are bound to one); -1 matches nothing.
  return { userId: p.userId ?? -1 };
}

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export function registerAuth(app: FastifyInstance, deps: AuthDeps): void {
  app.decorateRequest('principal', null);
  const table: RouteAccess[] = [];
  app.decorate('routeTable', table);
  // Refuse to start with a route that has no access rule, rather than discover it in production.
  app.addHook('onRoute', (route) => {
    const access = route.config?.access;
    if (!access) throw new Error(`route ${String(route.method)} ${route.url} has no access rule (config.access)`);
    for (const method of [route.method].flat()) table.push({ method, url: route.url, access });
  });

  function fromToken(secret: string): Principal | null {
    const t = deps.tokens.authenticate(secret);
    if (!t) return null;
    if (t.role === 'user') {
      // A user token is only as good as its account.
      const u = t.user !== null ? deps.users.byId(t.user) : null;
      if (!u || u.disabled) return null;
      return { via: 'token', userId: u.id, name: u.name, roles: ['user'], tokenId: t.id, csrf: null, sessionToken: null };
    }
    return { via: 'token', userId: null, name: t.name, roles: [t.role], tokenId: t.id, csrf: null, sessionToken: null };
  }

  function fromSession(token: string): Principal | null {
    const s = deps.sessions.get(token);
    if (!s) return null;
    const u = deps.users.byId(s.userId);
    if (!u || u.disabled) return null;
    return { via: 'session', userId: u.id, name: u.name, roles: u.roles, tokenId: null, csrf: s.csrf, sessionToken: token };
  }

  app.addHook('onRequest', async (request: FastifyRequest) => {
    // Unknown routes fall through to the 404 handler.
    if (request.routeOptions.url === undefined) return;
    const access = request.routeOptions.config?.access;
    if (!access) throw new ApiError(403, 'forbidden', 'this route has no access rule');

    const header = request.headers.authorization;
    const bearer = header ? /^Bearer\s+(\S+)$/i.exec(header) : null;
    const cookie = request.cookies?.[SESSION_COOKIE];
    let principal: Principal | null = null;
    if (bearer) {
      principal = fromToken(bearer[1]!);
      if (!principal && !('public' in access)) throw new ApiError(401, 'unauthorized', 'token is unknown or revoked');
    } else if (cookie) {
      principal = fromSession(cookie);
      if (principal && !SAFE_METHODS.has(request.method)) {
        // SameSite=Strict already keeps other sites' requests from carrying the cookie; the token
        // is the second lock (older browsers, same-site subdomains).
        const sent = request.headers['x-csrf-token'];
        if (typeof sent !== 'string' || !sameSecret(sent, principal.csrf!)) {
          throw new ApiError(403, 'csrf', 'missing or wrong X-CSRF-Token header (GET /api/session returns it)');
        }
      }
    }
    request.principal = principal;
    if ('public' in access) return;
    if (!principal) {
      throw new ApiError(401, 'unauthorized', cookie ? 'session ended; sign in again' : 'sign in (POST /api/session) or send Authorization: Bearer <token>');
    }
    if ('signedIn' in access) return;
    if (!access.roles.some((r) => principal.roles.includes(r))) {
      throw new ApiError(403, 'forbidden', `${principal.roles.join('+')} may not use this route`);
    }
  });
}
