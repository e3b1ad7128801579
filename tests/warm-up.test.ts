import { afterAll, describe, expect, it } from 'vitest';
import { startApi, type RunningApi } from '../services/api/server.js';
import { createLogger } from '../shared/logger.js';
import { QUEUES } from '../shared/queue/catalog.js';
import { openQueue } from '../shared/queue/queues.js';
import { openTestContext } from './support/context.js';
import { createShow } from './support/http.js';
import { waitFor } from './support/wait.js';

/**
 * A new API process sends itself API_WARMUP_REQUESTS requests before /ready says ready
 * (services/api/warmup.ts). They must change nothing: no booking, no job, no Redis key, no
 * rate-limit count, no access line.
 */

const ctx = await openTestContext();
const queue = openQueue(QUEUES.bookings, ctx.redis, ctx.config.QUEUE_PREFIX);
let api: RunningApi | undefined;
afterAll(async () => {
  await api?.close();
  await queue.close();
});

async function keysOfPrefix(): Promise<string[]> {
  const keys: string[] = [];
  for await (const batch of ctx.redis.scanStream({ match: `${ctx.config.QUEUE_PREFIX}:*`, count: 1_000 })) keys.push(...(batch as string[]));
  return keys.sort();
}

describe('the warm-up of a new API process', () => {
  it('keeps /ready at 503 until it is done, then changes nothing, spends no rate limit and logs one line', async () => {
    const setup = await ctx.startApi();
    const show = await createShow(setup.app, { total_seats: 10 });
    await setup.close();
    const keysBefore = await keysOfPrefix();
    const logs: Array<{ msg: string; [key: string]: unknown }> = [];
    const requests = 3_000;
    const config = ctx.configWith({ PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info', API_WARMUP_REQUESTS: String(requests), RATE_LIMIT_PER_MINUTE: '5' });
    api = await startApi(config, createLogger(config, 'warm-up-test', { write: (line: string) => void logs.push(JSON.parse(line)) }));

    // Right after listening, the warm-up has thousands of requests to go.
    const first = await fetch(`${api.url}/ready`);
    expect(first.status).toBe(503);
    expect(first.headers.get('retry-after')).toBe('2');
    expect(await first.json()).toEqual({ status: 'not_ready', checks: { postgres: 'up', redis: 'up', warm_up: 'running' } });

    // While it runs, a request with a forged token is an ordinary one: rate-limited (it spends
    // one of the 5) and logged. (A show nobody has: answered 404, so no booking is written.)
    const forged = await fetch(`${api.url}/booking`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-ticket-rush-warm-up': 'a'.repeat(32) },
      body: JSON.stringify({ show_id: '00000000-0000-4000-8000-000000000000', customer_email: 'forged@example.com', seat_count: 1 }),
    });
    expect(forged.status).toBe(404);
    expect(forged.headers.get('x-ratelimit-remaining')).toBe('4');

    await waitFor(async () => ((await fetch(`${api!.url}/ready`)).status === 200 ? true : undefined), 'the warm-up to end', 60_000);
    const warmed = logs.filter((line) => line.msg === 'warmed up: ready for traffic');
    expect(warmed).toHaveLength(1);
    expect(warmed[0]!.requests).toBe(requests);
    // Of the warm-up's requests none is in the access log (nor are the /ready probes, at debug):
    // the forged request is the one line.
    expect(logs.filter((line) => line.msg === 'request completed').map((line) => [line.route, line.status])).toEqual([['/booking', 404]]);

    // Nothing written: no booking, no job, no key but the forged request's rate-limit counter.
    const bookings = await ctx.pool.query('SELECT count(*)::int AS n FROM bookings');
    expect(bookings.rows[0].n).toBe(0);
    const jobs = await queue.getJobCounts('waiting', 'active', 'completed', 'failed', 'delayed');
    expect(Object.values(jobs).every((count) => count === 0), JSON.stringify(jobs)).toBe(true);
    expect((await keysOfPrefix()).filter((key) => !key.includes(':ratelimit:'))).toEqual(keysBefore);
    expect((await keysOfPrefix()).filter((key) => key.includes(':ratelimit:'))).toHaveLength(1);

    // The warm-up spent none of this client's budget of 5 a minute, the forged request one: 4
    // bookings pass, the 5th is refused.
    const book = (n: number) =>
      fetch(`${api!.url}/booking`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ show_id: show.id, customer_email: `warm-${n}@example.com`, seat_count: 1 }),
      });
    const statuses: number[] = [];
    for (let n = 0; n < 5; n++) statuses.push((await book(n)).status);
    expect(statuses).toEqual([202, 202, 202, 202, 429]);

    // /metrics counts the warm-up's answers as what they were: 404s (and the forged one).
    const metrics = await (await fetch(`${api.url}/metrics`)).text();
    const notFound = [...metrics.matchAll(/^ticket_rush_http_requests_total\{[^}]*status_code="404"[^}]*\} (\d+)/gm)].reduce((sum, match) => sum + Number(match[1]), 0);
    expect(notFound).toBe(requests + 1);
  });
});
