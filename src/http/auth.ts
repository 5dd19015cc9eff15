import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Role, TokenInfo, TokenStore } from '../db/tokens.js';
import { ApiError } from './errors.js';

/** Every route declares who may use it; a route without a rule is refused (default deny). */
export type Access = { public: true } | { roles: readonly Role[] };

declare module 'fastify' {
  interface FastifyContextConfig {
    access?: Access;
  }
  interface FastifyRequest {
    principal: TokenInfo | null;
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

export function registerAuth(app: FastifyInstance, tokens: TokenStore): void {
  app.decorateRequest('principal', null);
  const table: RouteAccess[] = [];
  app.decorate('routeTable', table);
  // Refuse to start with a route that has no access rule, rather than discover it in production.
  app.addHook('onRoute', (route) => {
    const access = route.config?.access;
    if (!access) throw new Error(`route ${String(route.method)} ${route.url} has no access rule (config.access)`);
    for (const method of [route.method].flat()) table.push({ method, url: route.url, access });
  });
  app.addHook('onRequest', async (request: FastifyRequest) => {
    const access = request.routeOptions.config?.access;
    // Unknown routes fall through to the 404 handler.
    if (request.routeOptions.url === undefined) return;
    if (!access) throw new ApiError(403, 'forbidden', 'this route has no access rule');
    if ('public' in access) return;
    const header = request.headers.authorization;
    const m = header ? /^Bearer\s+(\S+)$/i.exec(header) : null;
    if (!m) throw new ApiError(401, 'unauthorized', 'send Authorization: Bearer <token> (create one with `spindle token create`)');
    const principal = tokens.authenticate(m[1]!);
    if (!principal) throw new ApiError(401, 'unauthorized', 'token is unknown or revoked');
    if (!access.roles.includes(principal.role)) throw new ApiError(403, 'forbidden', `role ${principal.role} may not use this route`);
    request.principal = principal;
  });
}
