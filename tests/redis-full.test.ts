import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { openTestApi } from './support/context.js';
import { call, createShow } from './support/http.js';
import { ProcessRegistry, RedisServer } from './support/processes.js';

/**
 * A Redis that is full (maxmemory reached under noeviction, the only policy the services
 * accept) refuses writes with an OOM error reply on a healthy connection. That is the
 * dependency being unavailable, not a bug: bookings answer 503 with Retry-After, never 500,
 * and nothing is accepted that was not enqueued.
 */

const registry = new ProcessRegistry({});
// Registered before the context's hook, so it runs after it: the API's Redis outlives the API.
afterAll(() => registry.stopAll());
const redis = await RedisServer.start(registry, { args: ['--maxmemory', '4mb', '--maxmemory-policy', 'noeviction'] });
const { api } = await openTestApi({}, { REDIS_URL: redis.url });

describe('Redis full', () => {
  it('answers 503 + Retry-After, not 500, while Redis refuses writes for lack of memory', async () => {
    const show = await createShow(api.app, { total_seats: 10 });
    const ok = await call(api.app, 'POST', '/booking', { body: { show_id: show.id, customer_email: 'before@example.com', seat_count: 1 } });
    expect(ok.status).toBe(202);

    // Full: what Redis uses is above maxmemory, so under noeviction it refuses every write
    // (an OOM error reply) on a healthy connection. Filling keys up to a limit instead left the
    // memory hovering at it, and a small write now and then still fitted (a flaky 202). A limit
    // below what Redis already uses is that state, every time.
    const filler = new Redis(redis.url);
    try {
      await filler.config('SET', 'maxmemory', '1');
      await expect(filler.set('probe', 'x')).rejects.toThrow(/OOM/);
      const full = await call(api.app, 'POST', '/booking', {
        body: { show_id: show.id, customer_email: 'during@example.com', seat_count: 1 },
        headers: { 'idempotency-key': 'redis-full-1' },
      });
      expect(full.status).toBe(503);
      expect(full.headers['retry-after']).toMatch(/^\d+$/);
      expect(full.body.error.code).toBe('SERVICE_UNAVAILABLE');
      expect(JSON.stringify(full.body)).not.toMatch(/OOM|maxmemory/);

      // Room again: the same request (same key) is accepted.
      await filler.config('SET', 'maxmemory', '4mb');
      const after = await call(api.app, 'POST', '/booking', {
        body: { show_id: show.id, customer_email: 'during@example.com', seat_count: 1 },
        headers: { 'idempotency-key': 'redis-full-1' },
      });
      expect(after.status).toBe(202);
    } finally {
      filler.disconnect();
    }
  });
});
