import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import type { Queue } from 'bullmq';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from '../../../shared/logger.js';
import { bearerToken, tokenMatcher } from '../../../shared/secrets.js';

/**
 * Bull Board (the queues' web UI: counts, jobs, retry of failed jobs) at /admin/queues, in its
 * own scope behind the admin token. Everything the adapter registers (page, JSON API, static
 * files) lives in that scope, so the token hook runs before each of them.
 */

export const BULL_BOARD_PATH = '/admin/queues';

export type BullBoardDeps = { adminToken: string; queues: Record<string, Queue>; logger: Logger };

const UNAUTHORIZED = {
  error: { code: 'UNAUTHORIZED', message: 'The queue board needs the admin token (Bearer, or Basic with the token as password)' },
};

/**
 * The board is a browser page whose scripts call its JSON API and load its assets, and a
 * browser cannot add a Bearer header to those. So besides `Authorization: Bearer <token>` it
 * takes Basic auth with the token as the password: the browser asks once and resends it.
 * The hook answers by itself instead of throwing because the adapter installs its own error
 * handler in this scope, which would not give our error shape.
 */
function boardAuth(adminToken: string) {
  const matches = tokenMatcher(adminToken);
  return async function requireBoardToken(request: FastifyRequest, reply: FastifyReply) {
    const header = request.headers.authorization ?? '';
    const bearer = bearerToken(header);
    const basic = /^Basic ([A-Za-z0-9+/=]+)$/i.exec(header)?.[1];
    const password = basic ? Buffer.from(basic, 'base64').toString('utf8').split(':').slice(1).join(':') : undefined;
    const given = bearer ?? password;
    if (given && matches(given)) return;
    return reply.status(401).header('WWW-Authenticate', 'Basic realm="ticket-rush admin", charset="UTF-8"').send(UNAUTHORIZED);
  };
}

/**
 * The board's handlers answer failures as `{ error: { key: 'ERRORS.QUEUE_NOT_FOUND' } }` (a
 * translation key for its UI). Add the `code` and `message` every error of this API carries,
 * keeping `key` for the board's own page.
 */
async function withErrorCode(_request: FastifyRequest, reply: FastifyReply, payload: unknown): Promise<unknown> {
  if (reply.statusCode < 400 || typeof payload !== 'string' || !payload.startsWith('{')) return payload;
  try {
    const body = JSON.parse(payload) as { error?: { key?: unknown; code?: unknown } };
    if (!body.error || typeof body.error.code === 'string' || typeof body.error.key !== 'string') return payload;
    const name = body.error.key.replace(/^ERRORS\./, '');
    const message = name.charAt(0) + name.slice(1).toLowerCase().replace(/_/g, ' ');
    return JSON.stringify({ ...body, error: { code: name, message, ...body.error } });
  } catch {
    return payload;
  }
}

export const bullBoardRoutes =
  (deps: BullBoardDeps): FastifyPluginAsync =>
  async (scope) => {
    scope.addHook('onRequest', boardAuth(deps.adminToken));
    scope.addHook('onSend', withErrorCode);
    const serverAdapter = new FastifyAdapter();
    serverAdapter.setBasePath(BULL_BOARD_PATH);
    createBullBoard({
      queues: Object.values(deps.queues).map((queue) => new BullMQAdapter(queue)),
      serverAdapter,
      options: { uiConfig: { boardTitle: 'Ticket Rush queues' } },
    });
    // Replaces the board's default handler, which echoes error messages (and stacks when
    // NODE_ENV=development) to the client.
    serverAdapter.setErrorHandler((error: Error & { statusCode?: number }) => {
      // Every client error keeps its status, Fastify's own too (415 or 413 from the body parser).
      const status = error.statusCode ?? 500;
      const clientError = status >= 400 && status < 500;
      if (clientError) return { status: status as 400, body: { error: { code: 'BAD_REQUEST', message: error.message } } };
      deps.logger.error({ err: error }, 'queue board error');
      return { status: 500, body: { error: { code: 'INTERNAL', message: 'Internal server error' } } };
    });
    await scope.register(serverAdapter.registerPlugin(), { prefix: BULL_BOARD_PATH });
  };
