import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { AppDeps } from '../deps.js';

const CHECK_TIMEOUT_MS = 1_500;

async function probe(check: () => Promise<unknown>): Promise<'up' | 'down'> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      check(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error('timeout')), CHECK_TIMEOUT_MS);
      }),
    ]);
    return 'up';
  } catch {
    return 'down';
  } finally {
    clearTimeout(timer);
  }
}

const ReadyBody = z.object({
  status: z.enum(['ready', 'not_ready']),
  checks: z.object({
    postgres: z.enum(['up', 'down']),
    redis: z.enum(['up', 'down']),
    warm_up: z.enum(['running', 'done']).describe('The requests a new process sends itself before taking traffic (API_WARMUP_REQUESTS)'),
  }),
});

export const healthRoutes =
  (deps: Pick<AppDeps, 'pool' | 'redis' | 'warmUp'>): FastifyPluginAsyncZod =>
  async (app) => {
    app.get(
      '/health',
      { config: { rateLimit: false }, schema: { summary: 'Liveness: the process is serving', tags: ['ops'], response: { 200: z.object({ status: z.literal('ok') }) } } },
      async () => ({ status: 'ok' as const }),
    );

    app.get(
      '/ready',
      {
        config: { rateLimit: false },
        schema: { summary: 'Readiness: Postgres and Redis reachable, the warm-up done', tags: ['ops'], response: { 200: ReadyBody, 503: ReadyBody } },
      },
      async (_request, reply) => {
        const [postgres, redis] = await Promise.all([
          probe(() => deps.pool.query('SELECT 1')),
          probe(() => deps.redis.ping()),
        ]);
        const warmUp = deps.warmUp?.done === false ? 'running' : 'done';
        const ready = postgres === 'up' && redis === 'up' && warmUp === 'done';
        if (!ready) reply.header('Retry-After', '2');
        return reply.status(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not_ready', checks: { postgres, redis, warm_up: warmUp } });
      },
    );
  };
