import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { RunningWorker } from '../services/worker/worker.js';
import { webhooks } from '../shared/db/schema/index.js';
import { recordBookingEvents } from '../shared/webhooks/outbox.js';
import { pruneWebhookHistory } from '../shared/webhooks/prune.js';
import { fanOutEvents } from '../shared/webhooks/relay.js';
import { createShow, generalAdmission } from '../shared/booking/shows.js';
import { decideBookings } from '../shared/booking/decide.js';
import { loadLayout } from '../shared/booking/shows.js';
import { openTestContext } from './support/context.js';
import { waitFor } from './support/wait.js';

/**
 * Outbox retention: events older than WEBHOOK_RETENTION_HOURS whose deliveries are all settled
 * are deleted with their deliveries, oldest first, in bounded chunks; anything still pending,
 * young, or not fanned out yet stays. The worker runs it on a schedule.
 */

const ctx = await openTestContext({ DB_POOL_SIZE: '2' });
let worker: RunningWorker | undefined;
afterEach(async () => {
  await worker?.close();
  worker = undefined;
});
beforeEach(async () => {
  await ctx.pool.query('TRUNCATE webhooks, webhook_events, webhook_deliveries');
});

/** `count` held bookings' events, each fanned out to one webhook; returns the event ids, oldest first. */
async function fannedOutEvents(count: number): Promise<number[]> {
  await ctx.db.insert(webhooks).values({ url: 'http://127.0.0.1:9/hook', events: ['booking.held'], secret: 'whsec_dGVzdA==' });
  const show = await createShow(ctx.db, { name: 'Prune show', startTime: new Date('2030-01-01T20:00:00Z'), layout: generalAdmission(count) });
  const requests = Array.from({ length: count }, () => ({
    id: randomUUID(),
    show_id: show.id,
    customer_email: `prune-${randomUUID()}@example.com`,
    seat_count: 1,
    section: null,
    seats: null,
    accepted_at: new Date().toISOString(),
    idempotency_key: null,
    request_id: 'prune-test',
  }));
  await decideBookings(ctx.db, (await loadLayout(ctx.db, show.id))!, requests, { holdSeconds: 120, maxSeatsPerCustomer: 10, waitlistOfferSeconds: 900 });
  expect(await fanOutEvents(ctx.db, 1_000)).toBe(count);
  const { rows } = await ctx.pool.query<{ id: string }>('SELECT id FROM webhook_events ORDER BY id');
  return rows.map((row) => Number(row.id));
}

/** Sets the events' age and their deliveries' status (as the relay would have left them). */
async function settle(eventIds: number[], status: 'PENDING' | 'DELIVERED' | 'FAILED', hoursAgo: number): Promise<void> {
  await ctx.pool.query(`UPDATE webhook_events SET occurred_at = now() - make_interval(hours => $2) WHERE id = ANY($1)`, [eventIds, hoursAgo]);
  await ctx.pool.query(
    `UPDATE webhook_deliveries SET status = $2, delivered_at = CASE WHEN $2 = 'DELIVERED' THEN now() END WHERE event_id = ANY($1)`,
    [eventIds, status],
  );
}

async function remaining(): Promise<{ events: number[]; deliveries: number }> {
  const events = await ctx.pool.query<{ id: string }>('SELECT id FROM webhook_events ORDER BY id');
  const deliveries = await ctx.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM webhook_deliveries');
  return { events: events.rows.map((row) => Number(row.id)), deliveries: deliveries.rows[0]!.n };
}

describe('outbox retention', () => {
  it('deletes settled events older than the retention with their deliveries, and keeps pending, young and unfanned ones', async () => {
    const [delivered, failed, pending, young] = await fannedOutEvents(4);
    await settle([delivered!], 'DELIVERED', 73);
    await settle([failed!], 'FAILED', 73);
    await settle([pending!], 'PENDING', 73);
    await settle([young!], 'DELIVERED', 71);
    // Written by a booking change, not fanned out yet: its deliveries do not exist, it must stay.
    const [unfanned] = await ctx.pool.query<{ id: string }>('SELECT id FROM bookings LIMIT 1').then((result) => result.rows);
    await ctx.db.transaction((tx) => recordBookingEvents(tx, [{ type: 'booking.held', bookingId: unfanned!.id }]));
    await ctx.pool.query(`UPDATE webhook_events SET occurred_at = now() - interval '100 hours' WHERE fanned_out_at IS NULL`);

    expect(await pruneWebhookHistory(ctx.db, { retentionHours: 72, chunk: 100, maxChunks: 10 })).toEqual({ events: 2 });
    const left = await remaining();
    expect(left.events.slice(0, 2)).toEqual([pending, young]);
    expect(left.events).toHaveLength(3);
    expect(left.deliveries).toBe(2);
    expect(await pruneWebhookHistory(ctx.db, { retentionHours: 72, chunk: 100, maxChunks: 10 })).toEqual({ events: 0 });
  });

  it('works in chunks, oldest first, at most maxChunks per run, and the next run goes on', async () => {
    const ids = await fannedOutEvents(7);
    await settle(ids, 'DELIVERED', 80);
    expect(await pruneWebhookHistory(ctx.db, { retentionHours: 72, chunk: 2, maxChunks: 2 })).toEqual({ events: 4 });
    expect((await remaining()).events).toEqual(ids.slice(4));
    expect(await pruneWebhookHistory(ctx.db, { retentionHours: 72, chunk: 2, maxChunks: 2 })).toEqual({ events: 3 });
    expect(await remaining()).toEqual({ events: [], deliveries: 0 });
  });

  it('is one of the worker scheduled jobs, with WEBHOOK_RETENTION_HOURS', async () => {
    const [old, recent] = await fannedOutEvents(2);
    await settle([old!], 'DELIVERED', 3);
    await settle([recent!], 'DELIVERED', 1);
    worker = await ctx.startWorker({ WEBHOOK_RETENTION_HOURS: '2' });
    const schedulers = await worker.maintenanceQueue.getJobSchedulers();
    expect(schedulers.map((scheduler) => scheduler.key)).toContain('prune-webhooks');
    await waitFor(async () => ((await remaining()).events.length === 1 ? true : undefined), 'the old event pruned');
    expect((await remaining()).events).toEqual([recent]);
  });
});
