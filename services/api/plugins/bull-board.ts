import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import type { Queue } from 'bullmq';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from '../../../shared/logger.js';
import { QUEUES } from '../../../shared/queue/catalog.js';
import { bearerToken, tokenMatcher } from '../../../shared/secrets.js';

/**
 * Bull Board (the queues' web UI: counts, jobs, retry of failed jobs) at /admin/queues, in its
 * own scope behind the admin token; the bookings queue is read-only there but for retries. Everything the adapter registers (page, JSON API, static
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

/**
 * Queues whose jobs carry accepted booking requests: the board may show them, retry their
 * failed jobs and clean their completed ones, nothing else. Emptying, cleaning, obliterating or editing them would lose
 * requests that were answered 202.
 */
const READ_ONLY_QUEUES: ReadonlySet<string> = new Set([QUEUES.bookings]);

const readOnly = (queueName: string) => ({
  error: {
    code: 'QUEUE_READ_ONLY',
    message: `The ${queueName} queue is read-only on the board: its jobs are accepted booking requests. Only failed jobs can be retried.`,
    // The board's page shows its own text for this key.
    key: 'ERRORS.QUEUE_READ_ONLY',
  },
});

/**
 * Enforces READ_ONLY_QUEUES on the board's JSON API. The adapter's own options do not fit:
 * `readOnlyMode` refuses every write of the queue server-side, retries included (405), and
 * `allowRetries` / `allowCompletedRetries` only hide the UI's buttons, the server does not
 * check them (@bull-board/api 9.10.1, providers/queue.js and handlers/retry*.js). So writes to
 * a read-only queue pass only as a retry of failed jobs or a clean of completed ones, and
 * board-wide pause/resume (which would include it) are refused too.
 */
function guardReadOnlyQueues(queues: Record<string, Queue>) {
  return async function refuseDestructiveActions(request: FastifyRequest, reply: FastifyReply) {
    if (request.method === 'GET' || request.method === 'HEAD') return;
    const route = request.routeOptions.url ?? '';
    const params = request.params as { queueName?: string; queueStatus?: string; jobId?: string };
    const queueName = params.queueName;
    if (queueName === undefined) {
      const boardWide = [`${BULL_BOARD_PATH}/api/queues/pause`, `${BULL_BOARD_PATH}/api/queues/resume`];
      const touched = Object.keys(queues).find((name) => READ_ONLY_QUEUES.has(name));
      if (touched && boardWide.includes(route)) return reply.status(405).send(readOnly(touched));
      return;
    }
    if (!READ_ONLY_QUEUES.has(queueName)) return;
    if (route.endsWith('/retry/:queueStatus') && params.queueStatus === 'failed') return;
    // Completed jobs' requests are decided (Postgres has them): cleaning those frees memory only.
    if (route.endsWith('/clean/:queueStatus') && params.queueStatus === 'completed') return;
    if (route.endsWith('/:jobId/retry') && params.jobId) {
      const job = await queues[queueName]?.getJob(params.jobId);
      // A missing job is the board's own 404.
      if (!job || (await job.getState()) === 'failed') return;
    }
    return reply.status(405).send(readOnly(queueName));
  };
}

/**
 * True when a NUL character is anywhere in a parsed query or JSON body. A walk with its own
 * stack, not recursion: a 16 KB body can nest arrays thousands deep.
 */
function holdsNul(root: unknown): boolean {
  const pending: unknown[] = [root];
  while (pending.length > 0) {
    const value = pending.pop();
    if (typeof value === 'string') {
      if (value.includes('\u0000')) return true;
    } else if (Array.isArray(value)) {
      pending.push(...value);
    } else if (value && typeof value === 'object') {
      for (const [name, inner] of Object.entries(value)) pending.push(name, inner);
    }
  }
  return false;
}

/**
 * The board's validator joins a message key and its options with a NUL character and splits
 * them again (@bull-board/api 9.10.1, schemas/support.js `decodeKey`); when a refused value
 * itself holds a NUL, the split breaks and the board answers 500. No board input has a use for
 * NUL, so it is refused here, before the board sees it.
 */
async function refuseNulCharacters(request: FastifyRequest, reply: FastifyReply) {
  if (!holdsNul(request.query) && !holdsNul(request.body)) return;
  return reply.status(400).send({ error: { code: 'INVALID_REQUEST', message: 'The request holds a NUL character, which no queue board field accepts' } });
}

export const bullBoardRoutes =
  (deps: BullBoardDeps): FastifyPluginAsync =>
  async (scope) => {
    scope.addHook('onRequest', boardAuth(deps.adminToken));
    scope.addHook('preValidation', refuseNulCharacters);
    scope.addHook('preHandler', guardReadOnlyQueues(deps.queues));
    scope.addHook('onSend', withErrorCode);
    const serverAdapter = new FastifyAdapter();
    serverAdapter.setBasePath(BULL_BOARD_PATH);
    createBullBoard({
      // Not `readOnlyMode` (it would refuse retries too): the page still shows a read-only
      // queue's other buttons, and the guard above answers them QUEUE_READ_ONLY.
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
