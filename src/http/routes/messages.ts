import type { FastifyPluginAsync } from 'fastify';
import type { AppDeps } from '../app.js';
import { ApiError } from '../errors.js';

const idParams = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', pattern: '^[0-9]{1,16}$' } },
} as const;

export const messageRoutes: FastifyPluginAsync<AppDeps> = async (app, deps) => {
  const find = (id: string) => {
    const message = deps.reader.message(Number(id));
    if (!message) throw new ApiError(404, 'not_found', `no message ${id}`);
    return message;
  };

  app.get<{ Params: { id: string } }>('/api/messages/:id', {
    config: { access: { roles: ['auditor'] } },
    schema: { params: idParams },
  }, async (request) => find(request.params.id));

  app.get<{ Params: { id: string } }>('/api/messages/:id/raw', {
    config: { access: { roles: ['auditor'] } },
    schema: { params: idParams },
  }, async (request, reply) => {
    const message = find(request.params.id);
    reply
      .type('message/rfc822')
      .header('content-length', message.size)
      .header('content-disposition', `attachment; filename="${message.id}.eml"`)
      .header('x-spindle-sha256', message.sha256);
    return reply.send(deps.store.getStream(message.sha256));
  });
};
