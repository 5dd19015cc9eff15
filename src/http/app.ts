import fastifyCookie from '@fastify/cookie';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { AuditTrail } from '../audit/trail.js';
import type { SignIn } from '../auth/signin.js';
import type { ArchiveReader } from '../db/archive-reader.js';
import type { SessionStore } from '../db/sessions.js';
import type { TokenStore } from '../db/tokens.js';
import type { UserStore } from '../db/users.js';
import type { Exporter } from '../export/exporter.js';
import type { IndexLag } from '../ingest/indexer.js';
import type { Metrics } from '../metrics/metrics.js';
import type { RestoreSetup } from '../restore/restore-job.js';
import type { Searcher } from '../search/search.js';
import type { BlobStore } from '../store/blob-store.js';
import { registerAuth } from './auth.js';
import { ApiError, errorBody } from './errors.js';
import { auditRoutes } from './routes/audit.js';
import { exportRoutes } from './routes/export.js';
import { healthRoutes } from './routes/health.js';
import { holdRoutes } from './routes/holds.js';
import { integrityRoutes } from './routes/integrity.js';
import { messageRoutes } from './routes/messages.js';
import { restoreRoutes } from './routes/restore.js';
import { retentionRoutes, type RetentionApi } from './routes/retention.js';
import { searchRoutes } from './routes/search.js';
import { sessionRoutes } from './routes/session.js';
import { userRoutes } from './routes/users.js';

export interface AppDeps {
  reader: ArchiveReader;
  searcher: Searcher;
  store: BlobStore;
  tokens: TokenStore;
  users: UserStore;
  sessions: SessionStore;
  signIn: SignIn;
  /** Every look at mail is recorded here before the content is sent. */
  audit: AuditTrail;
  metrics: Metrics;
  indexLag: () => IndexLag;
  /** Retention rules, legal holds, purges and GET /api/integrity; absent: those routes are not offered. */
  retention?: RetentionApi;
  /** Exports (GET /api/export); absent: the route is not offered (apps built for tests of other routes). */
  exporter?: Exporter;
  /** IMAP settings for restores (POST /api/restore); absent or imap null: restores are not configured. */
  restore?: RestoreSetup;
  version: string;
}

/** Builds the HTTP app; never listens (the entry point does), so tests use app.inject(). */
export interface AppOptions {
  log?: Logger;
  /** Reverse proxies (addresses or CIDRs) whose X-Forwarded-For/-Proto are believed; none by default. */
  trustProxy?: string[];
}

export async function buildApp(deps: AppDeps, opts: AppOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({
    ...(opts.log ? { loggerInstance: opts.log.child({ component: 'http' }) as FastifyBaseLogger } : { logger: false }),
    logController: new LogController({ disableRequestLogging: true }),
    trustProxy: opts.trustProxy?.length ? opts.trustProxy : false,
    // Keep-alive clients must not hold up a shutdown (seen with streamed raw downloads).
    forceCloseConnections: true,
    bodyLimit: 1024 * 1024,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: true, allErrors: false } },
  });

  app.setErrorHandler((err: Error & { statusCode?: number; code?: string; validation?: unknown }, request, reply) => {
    if (err instanceof ApiError) return reply.status(err.statusCode).send(errorBody(err.code, err.message));
    if (err.validation) return reply.status(400).send(errorBody('bad_request', err.message));
    const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
    if (status === 500) request.log.error({ event: 'http.error', err, url: request.url }, 'request failed');
    return reply.status(status).send(errorBody(status === 500 ? 'internal' : 'bad_request', status === 500 ? 'internal error; see the server log' : err.message));
  });
  app.setNotFoundHandler((request, reply) => reply.status(404).send(errorBody('not_found', `no route ${request.method} ${request.url.split('?')[0]}`)));
  app.addHook('onSend', async (_request, reply, payload) => {
    reply.header('x-content-type-options', 'nosniff');
    reply.header('cache-control', 'no-store');
    return payload;
  });

  await app.register(fastifyCookie);
  registerAuth(app, deps);
  await app.register(healthRoutes, deps);
  await app.register(sessionRoutes, deps);
  await app.register(userRoutes, deps);
  await app.register(searchRoutes, deps);
  await app.register(messageRoutes, deps);
  await app.register(exportRoutes, deps);
  await app.register(restoreRoutes, deps);
  await app.register(auditRoutes, deps);
  if (deps.retention) {
    await app.register(retentionRoutes, deps);
    await app.register(holdRoutes, deps);
    await app.register(integrityRoutes, deps);
  }
  return app;
}
