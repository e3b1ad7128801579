import { randomUUID } from 'node:crypto';
import { beforeEach, describe, expect, it } from 'vitest';
import { decideBookings, type DecideSettings } from '../shared/booking/decide.js';
import { releaseLapsedHolds } from '../shared/booking/expire.js';
import { cancelBooking, confirmBooking } from '../shared/booking/settle.js';
import { createShow, generalAdmission, loadLayout } from '../shared/booking/shows.js';
import { webhooks } from '../shared/db/schema/index.js';
import type { BookingJob } from '../shared/queue/catalog.js';
import { BOOKING_EVENT_TYPES, type BookingEventType } from '../shared/webhooks/events.js';
import { createRelayWebhooksProcessor } from '../services/worker/jobs/relay-webhooks.js';
import { FAN_OUT_LOCK_KEY, fanOutEvents } from '../shared/webhooks/relay.js';
import { sql } from 'drizzle-orm';
import { QUEUES } from '../shared/queue/catalog.js';
import { openQueue } from '../shared/queue/queues.js';
import { openTestContext } from './support/context.js';
import { waitFor } from './support/wait.js';

/**
 * The outbox writer: every booking change writes its event in its own transaction (decisions,
 * settles, expiry), only for types some webhook subscribes to, and a rolled-back change writes
 * nothing.
 */

const ctx = await openTestContext({ DB_POOL_SIZE: '2' });
beforeEach(async () => {
  await ctx.pool.query('TRUNCATE webhooks, webhook_events, webhook_deliveries');
});

const settings: DecideSettings = { holdSeconds: 120, maxSeatsPerCustomer: 10, waitlistOfferSeconds: 900 };

const request = (showId: string, seatCount = 1): BookingJob => ({
  id: randomUUID(),
  show_id: showId,
  customer_email: `outbox-${randomUUID()}@example.com`,
  seat_count: seatCount,
  section: null,
  seats: null,
  accepted_at: new Date().toISOString(),
  idempotency_key: null,
  request_id: 'outbox-test',
});

async function newShow(seats: number): Promise<string> {
  return (await createShow(ctx.db, { name: 'Outbox show', startTime: new Date('2030-01-01T20:00:00Z'), layout: generalAdmission(seats) })).id;
}

async function decide(showId: string, requests: BookingJob[], holdSeconds = settings.holdSeconds) {
  const layout = (await loadLayout(ctx.db, showId))!;
  return decideBookings(ctx.db, layout, requests, { ...settings, holdSeconds });
}

async function subscribe(events: readonly BookingEventType[] = BOOKING_EVENT_TYPES): Promise<string> {
  const [row] = await ctx.db.insert(webhooks).values({ url: 'http://127.0.0.1:9/hook', events: [...events], secret: 'whsec_dGVzdA==' }).returning();
  return row!.id;
}

type EventRow = { type: string; booking_id: string; data: Record<string, unknown>; deliveries: number };
/** The outbox's events, oldest first, each with its deliveries once the relay has fanned them out. */
async function events(): Promise<EventRow[]> {
  await fanOutEvents(ctx.db, 1_000);
  const { rows } = await ctx.pool.query<EventRow>(
    `SELECT e.type, e.booking_id, e.data, (SELECT count(*)::int FROM webhook_deliveries d WHERE d.event_id = e.id) AS deliveries
     FROM webhook_events e ORDER BY e.id`,
  );
  return rows;
}

describe('the outbox writer', () => {
  it('writes nothing while no webhook is registered', async () => {
    const showId = await newShow(1);
    const [first, second] = [request(showId), request(showId)];
    await decide(showId, [first, second]);
    await confirmBooking(ctx.db, first.id, true, { offerSeconds: 900 });
    expect(await events()).toEqual([]);
  });

  it('writes nothing for event types no webhook subscribes to, while other types are subscribed', async () => {
    await subscribe(['booking.confirmed']);
    const showId = await newShow(1);
    const [held, soldOut] = [request(showId), request(showId)];
    await decide(showId, [held, soldOut]);
    expect(await events()).toEqual([]);
    await confirmBooking(ctx.db, held.id, true, { offerSeconds: 900 });
    expect((await events()).map((event) => [event.type, event.booking_id])).toEqual([['booking.confirmed', held.id]]);
  });

  it('writes every transition of a booking, in order, with the booking as it stood, one delivery per subscribed webhook', async () => {
    await subscribe();
    await subscribe(['booking.held']);
    const showId = await newShow(3);
    const [confirmed, declined, cancelled, soldOut] = [request(showId), request(showId), request(showId), request(showId)];
    await decide(showId, [confirmed, declined, cancelled, soldOut]);
    await confirmBooking(ctx.db, confirmed.id, true, { offerSeconds: 900 });
    await confirmBooking(ctx.db, declined.id, false, { offerSeconds: 900 });
    await cancelBooking(ctx.db, cancelled.id, { offerSeconds: 900 });

    const written = await events();
    expect(written.map((event) => [event.type, event.booking_id, event.deliveries])).toEqual([
      ['booking.held', confirmed.id, 2],
      ['booking.held', declined.id, 2],
      ['booking.held', cancelled.id, 2],
      ['booking.failed', soldOut.id, 1],
      ['booking.confirmed', confirmed.id, 1],
      ['booking.failed', declined.id, 1],
      ['booking.cancelled', cancelled.id, 1],
    ]);
    expect(written[0]!.data).toMatchObject({ id: confirmed.id, show_id: showId, status: 'HELD', reason: null, seats: ['1'], seat_count: 1 });
    expect(written[0]!.data.hold_expires_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(written[3]!.data).toMatchObject({ status: 'FAILED', reason: 'SOLD_OUT', seats: [] });
    expect(written[4]!.data).toMatchObject({ status: 'CONFIRMED', seats: ['1'], hold_expires_at: null });
    expect(written[5]!.data).toMatchObject({ status: 'FAILED', reason: 'PAYMENT_FAILED' });
    expect(written[6]!.data).toMatchObject({ status: 'CANCELLED' });
  });

  it('writes booking.expired from the sweep and from a confirm that finds the hold lapsed', async () => {
    await subscribe(['booking.expired']);
    const showId = await newShow(2);
    const [swept, confirmedLate] = [request(showId), request(showId)];
    await decide(showId, [swept, confirmedLate], 1);
    await waitFor(async () => {
      const { rows } = await ctx.pool.query<{ lapsed: boolean }>(
        `SELECT bool_and(hold_expires_at <= now()) AS lapsed FROM bookings WHERE show_id = $1`,
        [showId],
      );
      return rows[0]?.lapsed ? true : undefined;
    }, 'the holds to lapse');
    expect((await confirmBooking(ctx.db, confirmedLate.id, true, { offerSeconds: 900 })).kind).toBe('rejected');
    await ctx.db.transaction((tx) => releaseLapsedHolds(tx, { showId, limit: 10 }));
    const written = await events();
    expect(written.map((event) => [event.type, event.booking_id])).toEqual([
      ['booking.expired', confirmedLate.id],
      ['booking.expired', swept.id],
    ]);
    expect(written.every((event) => event.data.status === 'EXPIRED')).toBe(true);
  });

  it('writes nothing for a change that rolled back', async () => {
    await subscribe();
    const showId = await newShow(1);
    const held = request(showId);
    await decide(showId, [held], 1);
    await ctx.pool.query('TRUNCATE webhook_events, webhook_deliveries');
    await waitFor(async () => {
      const { rows } = await ctx.pool.query<{ lapsed: boolean }>(`SELECT hold_expires_at <= now() AS lapsed FROM bookings WHERE id = $1`, [held.id]);
      return rows[0]?.lapsed ? true : undefined;
    }, 'the hold to lapse');
    const rolledBack = new Error('rolled back on purpose');
    await expect(
      ctx.db.transaction(async (tx) => {
        expect((await releaseLapsedHolds(tx, { showId, limit: 10 })).bookings).toBe(1);
        throw rolledBack;
      }),
    ).rejects.toBe(rolledBack);
    expect(await events()).toEqual([]);
    const { rows } = await ctx.pool.query<{ status: string }>('SELECT status FROM bookings WHERE id = $1', [held.id]);
    expect(rows[0]!.status).toBe('HELD');
  });

  it('writes only the event on the booking path; the relay fans it out, oldest first, once, to the webhooks subscribed then', async () => {
    await subscribe();
    const showId = await newShow(1);
    const [held, soldOut] = [request(showId), request(showId)];
    await decide(showId, [held, soldOut]);
    const count = async (table: 'webhook_events' | 'webhook_deliveries') =>
      (await ctx.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`)).rows[0]!.n;
    expect([await count('webhook_events'), await count('webhook_deliveries')]).toEqual([2, 0]);

    await subscribe(['booking.failed']); // registered before the fan-out: it hears of the failure
    expect(await fanOutEvents(ctx.db, 1)).toBe(1);
    expect((await events()).map((event) => [event.type, event.booking_id, event.deliveries])).toEqual([
      ['booking.held', held.id, 1],
      ['booking.failed', soldOut.id, 2],
    ]);
    expect(await fanOutEvents(ctx.db, 10)).toBe(0);
    expect(await count('webhook_deliveries')).toBe(3);
  });

  it('fans out one relay at a time: a tick that finds another fanning out leaves the events to it', async () => {
    await subscribe();
    const showId = await newShow(1);
    await decide(showId, [request(showId)]);
    await ctx.db.transaction(async (tx) => {
      await tx.execute(sql`SELECT pg_advisory_xact_lock(${FAN_OUT_LOCK_KEY})`);
      expect(await fanOutEvents(ctx.db, 10)).toBe(0);
    });
    expect(await fanOutEvents(ctx.db, 10)).toBe(1);
  });

  it('the relay takes a small batch while bookings are being decided, a full one otherwise', async () => {
    await subscribe(['booking.held']);
    const showId = await newShow(5);
    await decide(showId, [request(showId), request(showId), request(showId), request(showId), request(showId)]);
    const queue = openQueue(QUEUES.webhooks, ctx.redis, ctx.config.QUEUE_PREFIX);
    try {
      let busy = true;
      const tick = createRelayWebhooksProcessor({ db: ctx.db, queue, batch: 10, busyBatch: 2, bookingsBusy: async () => busy, leaseMs: 60_000 });
      expect(await tick()).toEqual({ queued: 2 });
      busy = false;
      expect(await tick()).toEqual({ queued: 3 });
      expect(await tick()).toEqual({ queued: 0 }); // all leased
      const jobs = await queue.getJobs(['waiting']);
      expect(jobs.map((job) => job.data.deliveries.length).sort()).toEqual([2, 3]);
    } finally {
      await queue.obliterate({ force: true });
      await queue.close();
    }
  });
});
