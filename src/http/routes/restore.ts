import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { AuditOutcome } from '../../audit/entries.js';
import { createLoginThrottle } from '../../auth/throttle.js';
import { normalizeAddress, UserError } from '../../db/users.js';
import { DEFAULT_RESTORE_FOLDER, folderProblem, RestoreConnectError } from '../../restore/imap-restore.js';
import { masterLogin, newRestoreId, requestDetails, runRestore, type RestoreMethod, type RestoreReport } from '../../restore/restore-job.js';
import { MAX_RESTORE_MESSAGES, selectMessages, TooManyMessagesError, type RestoreSelection, type Selection } from '../../restore/select.js';
import { QueryError } from '../../search/query.js';
import type { AppDeps } from '../app.js';
import { recordAccess } from '../audit-record.js';
import { mailScope, seesAllMail } from '../auth.js';
import { ApiError } from '../errors.js';

interface RestoreBody {
  ids?: number[];
  query?: string;
  folder?: string;
  /** Restore into your own mailbox: your mail password (Spindle stores none). */
  password?: string;
  /** Auditors: restore into this mailbox with the configured master user. */
  mailbox?: string;
}

const bodySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    ids: { type: 'array', minItems: 1, maxItems: MAX_RESTORE_MESSAGES, items: { type: 'integer', minimum: 1, maximum: Number.MAX_SAFE_INTEGER } },
    query: { type: 'string', maxLength: 2000 },
    folder: { type: 'string', minLength: 1, maxLength: 200 },
    password: { type: 'string', minLength: 1, maxLength: 1024 },
    mailbox: { type: 'string', minLength: 3, maxLength: 320 },
  },
} as const;

const responseSchema = {
  type: 'object',
  properties: {
    restore_id: { type: 'string' },
    mailbox: { type: 'string' },
    folder: { type: 'string' },
    selected: { type: 'integer' },
    appended: { type: 'integer' },
    failed: { type: 'array', items: { type: 'object', properties: { id: { type: 'integer' }, error: { type: 'string' } } } },
    skipped: { type: 'array', items: { type: 'integer' } },
    stopped: { type: ['string', 'null'] },
  },
} as const;

/** What a client learns: someone else's message is "skipped" exactly like a missing one (no probing). */
const answer = (r: RestoreReport) => ({
  restore_id: r.restore_id, mailbox: r.mailbox, folder: r.folder, selected: r.selected, appended: r.appended,
  failed: r.failed, skipped: [...r.not_found, ...r.not_participant].sort((a, b) => a - b), stopped: r.stopped,
});

export const restoreRoutes: FastifyPluginAsync<AppDeps> = async (app, deps) => {
  // Re-entering the mail password here must not be a way around the sign-in throttle.
  const throttle = createLoginThrottle();

  app.post<{ Body: RestoreBody }>('/api/restore', {
    config: { access: { roles: ['auditor', 'user'] } },
    schema: { body: bodySchema, response: { 200: responseSchema } },
  }, async (request: FastifyRequest<{ Body: RestoreBody }>, reply: FastifyReply) => {
    const body = request.body;
    if ((body.ids === undefined) === (body.query === undefined)) throw new ApiError(400, 'bad_request', 'give either ids or query');
    if ((body.password === undefined) === (body.mailbox === undefined)) {
      throw new ApiError(400, 'bad_request', 'give password (restore into your own mailbox) or mailbox (auditors: into that mailbox)');
    }
    const folder = body.folder ?? DEFAULT_RESTORE_FOLDER;
    const problem = folderProblem(folder);
    if (problem) throw new ApiError(400, 'bad_folder', problem);
    const selectionRequest: RestoreSelection = body.ids ? { ids: body.ids } : { query: body.query ?? '' };
    const method: RestoreMethod = body.mailbox !== undefined ? 'master' : 'own';
    const restoreId = newRestoreId();
    const principal = request.principal!;

    /** A restore refused before any mail server was asked: on record, then the error. */
    const refuse = async (status: number, code: string, message: string, outcome: AuditOutcome, target: string | null): Promise<never> => {
      await recordAccess(deps.audit, request, {
        action: 'restore', target, outcome, details: { ...requestDetails(restoreId, method, folder, selectionRequest), stage: 'refused', error: code },
      });
      throw new ApiError(status, code, message);
    };

    const setup = deps.restore;
    if (!setup?.imap) return refuse(400, 'restore_not_configured', 'restoring needs the mail server: set SPINDLE_IMAP_HOST (docs/restore.md)', 'failed', body.mailbox ?? null);
    let mailbox: string;
    let auth: { user: string; pass: string };
    if (method === 'master') {
      if (!seesAllMail(principal)) return refuse(403, 'forbidden', 'only auditors restore into another mailbox; restore into your own with your mail password', 'denied', body.mailbox ?? null);
      try {
        mailbox = normalizeAddress(body.mailbox ?? '');
      } catch (err) {
        if (err instanceof UserError) throw new ApiError(400, 'bad_request', err.message);
        throw err;
      }
      if (!setup.master) {
        return refuse(400, 'restore_not_configured', 'restoring into another mailbox needs a Dovecot master user: set SPINDLE_RESTORE_IMAP_USER and SPINDLE_RESTORE_IMAP_PASSWORD (docs/restore.md)', 'failed', mailbox);
      }
      auth = masterLogin(setup.master, mailbox);
    } else {
      const account = principal.userId !== null ? deps.users.byId(principal.userId) : null;
      // The mailbox is the account's login address, and only the mail server can check its password.
      if (!account || account.source !== 'imap') {
        return refuse(403, 'no_mail_login', 'restoring into your own mailbox needs an account that signs in with its mail password', 'denied', null);
      }
      mailbox = account.name;
      auth = { user: account.name, pass: body.password ?? '' };
    }

    let selection: Selection;
    try {
      selection = selectMessages(deps, selectionRequest, method === 'own' ? mailScope(principal) : null);
    } catch (err) {
      if (err instanceof QueryError) return refuse(400, 'bad_query', err.message, 'failed', mailbox);
      if (err instanceof TooManyMessagesError) return refuse(400, 'too_many', err.message, 'failed', mailbox);
      throw err;
    }

    const throttled = method === 'own' && selection.messages.length > 0;
    if (throttled) {
      const decision = throttle.check(mailbox, request.ip);
      if (!decision.allowed) {
        reply.header('retry-after', String(Math.max(1, Math.ceil(decision.retryAfterMs / 1000))));
        return refuse(429, decision.reason, 'too many wrong mail passwords; wait before the next try', 'denied', mailbox);
      }
    }
    let loggedIn = false;
    let report: RestoreReport;
    try {
      report = await runRestore({
        store: deps.store, connection: setup.imap, auth, mailbox, folder, method, request: selectionRequest, selection, restoreId,
        clientIp: request.ip,
        record: async (entry) => {
          if (entry.details.stage === 'start') loggedIn = true;
          if (entry.details.stage !== 'done') return recordAccess(deps.audit, request, { action: 'restore', ...entry });
          // The mail is in the mailbox and the start is on record: an error now would misreport what happened.
          await recordAccess(deps.audit, request, { action: 'restore', ...entry }).catch(() => undefined);
        },
      });
    } catch (err) {
      if (throttled) {
        if (err instanceof RestoreConnectError && err.reason === 'bad_credentials') throttle.recordFailure(mailbox, request.ip);
        else if (loggedIn) throttle.recordSuccess(mailbox, request.ip);
        else throttle.release(mailbox, request.ip);
      }
      if (!(err instanceof RestoreConnectError)) throw err;
      request.log.warn({ event: 'restore.refused', restore_id: restoreId, mailbox, reason: err.reason, detail: err.detail }, 'restore refused by the mail server');
      if (err.reason === 'folder_refused') throw new ApiError(400, 'bad_folder', err.detail);
      if (err.reason === 'bad_credentials') {
        if (method === 'own') throw new ApiError(401, 'bad_credentials', 'wrong mail password');
        throw new ApiError(502, 'restore_login_refused', `the mail server refused the master-user login into ${mailbox}: check that the mailbox exists and the SPINDLE_RESTORE_IMAP_* settings`);
      }
      throw new ApiError(503, 'unavailable', 'the mail server could not be reached for the restore; try again later (see the server log)');
    }
    if (throttled) throttle.recordSuccess(mailbox, request.ip);
    request.log.info({
      event: 'restore.done', restore_id: restoreId, mailbox, folder, method, appended: report.appended, failed: report.failed.length,
      skipped: report.not_found.length + report.not_participant.length, stopped: report.stopped,
    }, 'restore finished');
    return answer(report);
  });
};
