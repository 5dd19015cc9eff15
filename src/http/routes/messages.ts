import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { AppDeps } from '../app.js';
import { recordAccess } from '../audit-record.js';
import { mailScope } from '../auth.js';
import { ApiError } from '../errors.js';

const idParams = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', pattern: '^[0-9]{1,16}$' } },
} as const;

export const messageRoutes: FastifyPluginAsync<AppDeps> = async (app, deps) => {
  /**
   * Finds the message and puts the look on record (a miss too) before anything is sent. Someone
   * else's message is a 404 like a missing one, so ids cannot be probed.
   */
  const find = async (request: FastifyRequest<{ Params: { id: string } }>, action: 'message.view' | 'message.raw') => {
    const id = request.params.id;
    const scope = mailScope(request.principal!);
    const message = deps.reader.message(Number(id));
    const visible = message !== null && (scope === null || deps.reader.isParticipant(message.id, scope.userId));
    await recordAccess(deps.audit, request, {
      action, target: id, outcome: visible ? 'ok' : message ? 'denied' : 'failed', details: visible ? {} : { error: message ? 'not_participant' : 'not_found' },
    });
    if (!visible) throw new ApiError(404, 'not_found', `no message ${id}`);
    return scope === null ? message : deps.reader.redactFor(message, scope.userId);
  };

  app.get<{ Params: { id: string } }>('/api/messages/:id', {
    config: { access: { roles: ['auditor', 'user'] } },
    schema: { params: idParams },
  }, async (request) => find(request, 'message.view'));

  app.get<{ Params: { id: string } }>('/api/messages/:id/raw', {
    config: { access: { roles: ['auditor', 'user'] } },
    schema: { params: idParams },
  }, async (request, reply) => {
    const message = await find(request, 'message.raw');
    reply
      .type('message/rfc822')
      .header('content-length', message.size)
      .header('content-disposition', `attachment; filename="${message.id}.eml"`)
      .header('x-spindle-sha256', message.sha256);
    return reply.send(deps.store.getStream(message.sha256));
  });
};
