import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { decideBookings, type DecideSettings, type Decision } from '../shared/booking/decide.js';
import { createShow, generalAdmission, loadLayout } from '../shared/booking/shows.js';
import type { BookingJob } from '../shared/queue/catalog.js';
import { openTestContext } from './support/context.js';

/**
 * The sold-out fast path decides a whole batch without locks once the committed state has no
 * AVAILABLE seat and no lapsed hold. These tests pin down that it never answers too early.
 */

const ctx = await openTestContext();

const settings: DecideSettings = { holdSeconds: 600, maxSeatsPerCustomer: 10, waitlistOfferSeconds: 900 };

const request = (showId: string, more: Partial<BookingJob> = {}): BookingJob => ({
  id: randomUUID(),
  show_id: showId,
  customer_email: `${randomUUID()}@example.com`,
  seat_count: 1,
  section: null,
  seats: null,
  accepted_at: new Date().toISOString(),
  idempotency_key: null,
  request_id: 'sold-out-test',
  ...more,
});

async function decide(showId: string, jobs: BookingJob[]): Promise<Decision[]> {
  const layout = (await loadLayout(ctx.db, showId))!;
  const decisions = await decideBookings(ctx.db, layout, jobs, settings);
  return jobs.map((job) => decisions.get(job.id)!);
}

const outcome = (decision: Decision) =>
  decision.kind === 'decided' ? `${decision.booking.status}${decision.booking.reason ? `:${decision.booking.reason}` : ''}` : 'CONTENDED';

async function showWithSeats(seats: number): Promise<string> {
  return (await createShow(ctx.db, { name: 'Sold out', startTime: new Date('2030-01-01T20:00:00Z'), layout: generalAdmission(seats) })).id;
}

describe('a sold-out show', () => {
  it('fails a whole batch at once: SOLD_OUT for best available, SEATS_UNAVAILABLE for named seats', async () => {
    const showId = await showWithSeats(3);
    expect((await decide(showId, [request(showId, { seat_count: 3 })])).map(outcome)).toEqual(['HELD']);
    const batch = [request(showId), request(showId, { seats: ['2'] }), request(showId, { seat_count: 2 })];
    expect((await decide(showId, batch)).map(outcome)).toEqual(['FAILED:SOLD_OUT', 'FAILED:SEATS_UNAVAILABLE', 'FAILED:SOLD_OUT']);
    const rows = await ctx.pool.query(`SELECT count(*)::int AS n FROM bookings WHERE show_id = $1 AND status = 'FAILED'`, [showId]);
    expect(rows.rows[0].n).toBe(3);
  });

  it('keeps the same precedence as the locking path: a customer over the cap is LIMIT_EXCEEDED', async () => {
    const showId = await showWithSeats(10);
    const greedy = 'greedy@example.com';
    expect((await decide(showId, [request(showId, { seat_count: 9, customer_email: greedy })])).map(outcome)).toEqual(['HELD']);
    expect((await decide(showId, [request(showId)])).map(outcome)).toEqual(['HELD']);
    const batch = [request(showId, { seat_count: 2, customer_email: greedy }), request(showId, { customer_email: greedy }), request(showId)];
    expect((await decide(showId, batch)).map(outcome)).toEqual(['FAILED:LIMIT_EXCEEDED', 'FAILED:SOLD_OUT', 'FAILED:SOLD_OUT']);
  });

  it("counts a customer's live holds toward the cap, and not a hold that has lapsed", async () => {
    const showId = await showWithSeats(20);
    const [lapsing, live] = ['lapsing@example.com', 'live@example.com'];
    const [first] = await decide(showId, [request(showId, { seat_count: 9, customer_email: lapsing }), request(showId, { seat_count: 9, customer_email: live })]);
    const lapsedId = first!.kind === 'decided' ? first!.booking.id : '';
    await ctx.pool.query(`UPDATE bookings SET hold_expires_at = now() - interval '1 second' WHERE id = $1`, [lapsedId]);
    await ctx.pool.query(`UPDATE seats SET hold_expires_at = now() - interval '1 second' WHERE booking_id = $1`, [lapsedId]);
    const batch = [request(showId, { seat_count: 2, customer_email: lapsing }), request(showId, { seat_count: 2, customer_email: live })];
    expect((await decide(showId, batch)).map(outcome)).toEqual(['HELD', 'FAILED:LIMIT_EXCEEDED']);
  });

  it('is not sold out while a hold has lapsed unswept: the next request gets that seat', async () => {
    const showId = await showWithSeats(2);
    const [first] = await decide(showId, [request(showId, { seat_count: 2 })]);
    const bookingId = first!.kind === 'decided' ? first!.booking.id : '';
    await ctx.pool.query(`UPDATE bookings SET hold_expires_at = now() - interval '1 second' WHERE id = $1`, [bookingId]);
    await ctx.pool.query(`UPDATE seats SET hold_expires_at = now() - interval '1 second' WHERE booking_id = $1`, [bookingId]);
    const [next] = await decide(showId, [request(showId)]);
    expect(outcome(next!)).toBe('HELD');
  });

  it('is not sold out while the last seats are only locked by another transaction', async () => {
    const showId = await showWithSeats(2);
    await decide(showId, [request(showId)]);
    const blocker = new pg.Client({ connectionString: ctx.databaseUrl });
    await blocker.connect();
    try {
      await blocker.query('BEGIN');
      await blocker.query(`SELECT id FROM seats WHERE show_id = $1 AND status = 'AVAILABLE' FOR UPDATE`, [showId]);
      expect((await decide(showId, [request(showId)])).map(outcome)).toEqual(['CONTENDED']);
      await blocker.query('ROLLBACK');
      expect((await decide(showId, [request(showId), request(showId)])).map(outcome)).toEqual(['HELD', 'FAILED:SOLD_OUT']);
    } finally {
      await blocker.query('ROLLBACK').catch(() => {});
      await blocker.end();
    }
  });
});
