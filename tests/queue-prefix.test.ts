import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { openTestApi } from './support/context.js';
import { call, createShow, waitForDecision } from './support/http.js';
import { waitFor } from './support/wait.js';

/**
 * Redis Cluster runs a multi-key command only when all its keys hash to one slot, and the slot
 * of a key with a {hash tag} is the slot of the tag. With QUEUE_PREFIX="{...}" every key the
 * pipeline writes (BullMQ's, idempotency keys, rate-limit counters, outcome counters) must
 * carry that same tag first.
 */

const tag = `{tr-${randomBytes(4).toString('hex')}}`;
const { ctx, api } = await openTestApi({ QUEUE_PREFIX: tag, RATE_LIMIT_PER_MINUTE: '1000' });
await ctx.startWorker();

/** The part of a key Redis Cluster hashes: between the first "{" and the next "}", when not empty. */
function hashedPart(key: string): string {
  const open = key.indexOf('{');
  const close = open >= 0 ? key.indexOf('}', open + 1) : -1;
  return open >= 0 && close > open + 1 ? key.slice(open + 1, close) : key;
}

describe('QUEUE_PREFIX with a hash tag', () => {
  it('runs the pipeline and keeps every key it writes in the tag\'s slot', async () => {
    expect(ctx.config.QUEUE_PREFIX).toBe(tag);
    const show = await createShow(api.app, { total_seats: 2 });
    const first = await call(api.app, 'POST', '/booking', {
      body: { show_id: show.id, customer_email: 'a@example.com', seat_count: 1 },
      headers: { 'idempotency-key': 'cluster-key-1' },
    });
    const second = await call(api.app, 'POST', '/booking', { body: { show_id: show.id, customer_email: 'b@example.com', seat_count: 2 } });
    expect([first.status, second.status]).toEqual([202, 202]);
    expect(await waitForDecision(api.app, first.body.id)).toMatchObject({ status: 'HELD' });
    expect(await waitForDecision(api.app, second.body.id)).toMatchObject({ status: 'FAILED', reason: 'SOLD_OUT' });
    // Workers send their outcome counts to Redis every quarter second: wait for them.
    const scrape = await waitFor(async () => {
      const response = await api.app.inject({ method: 'GET', url: '/metrics' });
      return /ticket_rush_bookings_total\{status="FAILED"/.test(response.body) ? response : undefined;
    }, 'the outcome counts in /metrics', 10_000);
    expect(scrape.body).toMatch(/ticket_rush_bookings_total\{status="HELD",reason="none"\} 1/);

    const keys: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await ctx.redis.scan(cursor, 'MATCH', `${tag}*`, 'COUNT', 1_000);
      cursor = next;
      keys.push(...batch);
    } while (cursor !== '0');
    // BullMQ's own keys, the idempotency key, the rate-limit counter and the outcome counters.
    expect(keys.some((key) => key.includes(':bookings:'))).toBe(true);
    expect(keys.some((key) => key.includes(':idem:'))).toBe(true);
    expect(keys.some((key) => key.includes(':ratelimit:'))).toBe(true);
    expect(keys).toContain(`${tag}:stats:outcomes`);
    for (const key of keys) expect(hashedPart(key), key).toBe(tag.slice(1, -1));
  });
});
