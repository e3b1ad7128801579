import { Queue } from 'bullmq';
import { beforeAll, describe, expect, it } from 'vitest';
import { QUEUES } from '../shared/queue/catalog.js';
import type { RunningWorker } from '../services/worker/worker.js';
import { openTestApi } from './support/context.js';
import { call, createShow, waitForDecision } from './support/http.js';
import { waitFor } from './support/wait.js';

/**
 * Settling holds: confirm (simulated payment), cancel and expiry, checked through the API and
 * directly in Postgres. The first worker holds for 5 minutes and sweeps hourly, so nothing
 * expires unless a test makes it; the last part swaps in a worker that holds for 1 s and sweeps
 * every second.
 */

const { ctx, api } = await openTestApi({ HOLD_SECONDS: '300', EXPIRY_INTERVAL_SECONDS: '3600', MAX_SEATS_PER_CUSTOMER: '100' });
let slowWorker: RunningWorker;
const showId = (await createShow(api.app, { sections: [{ name: 'Stalls', rows: 4, seats_per_row: 10, price_cents: 3_000 }] })).id;

type SeatRow = { label: string; status: string; booking_id: string | null; hold_expires_at: Date | null };

/** The seats as Postgres stores them (not as the API presents them). */
async function seatRows(labels: string[]): Promise<SeatRow[]> {
  const result = await ctx.pool.query<SeatRow>(
    'SELECT label, status, booking_id, hold_expires_at FROM seats WHERE show_id = $1 AND label = ANY($2) ORDER BY id',
    [showId, labels],
  );
  return result.rows;
}

async function bookingRow(id: string) {
  const result = await ctx.pool.query('SELECT status, failure_reason, seat_labels, confirmed_at FROM bookings WHERE id = $1', [id]);
  return result.rows[0];
}

async function hold(seats: string[], email = 'ada@example.com', forShow = showId): Promise<{ id: string; seats: string[] }> {
  const accepted = await call(api.app, 'POST', '/booking', { body: { show_id: forShow, customer_email: email, seats } });
  expect(accepted.status).toBe(202);
  const decided = await waitForDecision(api.app, accepted.body.id);
  expect(decided).toMatchObject({ status: 'HELD', seats });
  return { id: accepted.body.id, seats };
}

const confirm = (id: string, payment: 'success' | 'fail' = 'success') => call(api.app, 'POST', `/booking/${id}/confirm`, { body: { payment } });
const cancel = (id: string) => call(api.app, 'POST', `/booking/${id}/cancel`);

function expectConflict(reply: { status: number; body: any }, code: string) {
  expect(reply.status, JSON.stringify(reply.body)).toBe(409);
  expect(reply.body).toEqual({ error: { code, message: expect.any(String) } });
}

describe('before any worker runs', () => {
  it('confirming a QUEUED booking is 409 BOOKING_QUEUED; cancelling one takes it out of the line, never decided', async () => {
    const accepted = await call(api.app, 'POST', '/booking', { body: { show_id: showId, customer_email: 'q@example.com', seats: ['Stalls-D-10'] } });
    expect(accepted.status).toBe(202);
    expectConflict(await confirm(accepted.body.id), 'BOOKING_QUEUED');
    const leaver = await call(api.app, 'POST', '/booking', { body: { show_id: showId, customer_email: 'l@example.com', seats: ['Stalls-D-9'] } });
    const left = await cancel(leaver.body.id);
    expect(left.status).toBe(200);
    expect(left.body).toMatchObject({ id: leaver.body.id, status: 'CANCELLED', seats: [], total_cents: 0 });
    // The first is still queued, untouched: a worker decides it normally later; the one that left stays out.
    slowWorker = await ctx.startWorker();
    expect(await waitForDecision(api.app, accepted.body.id)).toMatchObject({ status: 'HELD', seats: ['Stalls-D-10'] });
    const queue = new Queue(QUEUES.bookings, { connection: ctx.redis, prefix: ctx.config.QUEUE_PREFIX });
    await waitFor(async () => {
      const counts = await queue.getJobCounts('wait', 'active', 'delayed');
      return Object.values(counts).every((count) => count === 0) ? true : undefined;
    }, 'every batch job to finish');
    await queue.close();
    expect(await bookingRow(leaver.body.id)).toMatchObject({ status: 'CANCELLED', seat_labels: [] });
    expect(await seatRows(['Stalls-D-9'])).toMatchObject([{ status: 'AVAILABLE', booking_id: null }]);
  });
});

describe('confirm', () => {
  it('books the seats; confirming again answers 200 with the same result', async () => {
    const booking = await hold(['Stalls-A-1', 'Stalls-A-2']);
    const first = await confirm(booking.id);
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ id: booking.id, status: 'CONFIRMED', reason: null, seats: booking.seats, hold_expires_at: null });
    expect(Date.parse(first.body.confirmed_at)).toBeLessThanOrEqual(Date.now());
    expect(await seatRows(booking.seats)).toEqual(booking.seats.map((label) => ({ label, status: 'BOOKED', booking_id: booking.id, hold_expires_at: null })));

    const second = await confirm(booking.id);
    expect(second.status).toBe(200);
    expect(second.body).toEqual(first.body);

    const seats = await call(api.app, 'GET', `/shows/${showId}/seats`);
    expect(seats.body.filter((s: any) => booking.seats.includes(s.label)).map((s: any) => s.status)).toEqual(['BOOKED', 'BOOKED']);
    const status = await call(api.app, 'GET', `/booking/${booking.id}/status`);
    expect(status.body).toMatchObject({ status: 'CONFIRMED', seats: booking.seats });
    expect(status.body.hold_expires_at).toBeUndefined();
  });

  it('a failed payment fails the booking (PAYMENT_FAILED) and releases its seats', async () => {
    const booking = await hold(['Stalls-A-3', 'Stalls-A-4']);
    const failed = await confirm(booking.id, 'fail');
    expect(failed.status).toBe(200);
    expect(failed.body).toMatchObject({ id: booking.id, status: 'FAILED', reason: 'PAYMENT_FAILED', confirmed_at: null, seats: booking.seats });
    expect(await seatRows(booking.seats)).toEqual(booking.seats.map((label) => ({ label, status: 'AVAILABLE', booking_id: null, hold_expires_at: null })));
    expect(await bookingRow(booking.id)).toMatchObject({ status: 'FAILED', failure_reason: 'PAYMENT_FAILED', seat_labels: booking.seats });
    const status = await call(api.app, 'GET', `/booking/${booking.id}/status`);
    expect(status.body).toMatchObject({ status: 'FAILED', reason: 'PAYMENT_FAILED' });

    // Settled for good: paying now, failing again or cancelling all conflict.
    expectConflict(await confirm(booking.id), 'BOOKING_FAILED');
    expectConflict(await confirm(booking.id, 'fail'), 'BOOKING_FAILED');
    expectConflict(await cancel(booking.id), 'BOOKING_FAILED');
    // ...and the released seats can be held by someone else.
    await hold(booking.seats, 'grace@example.com');
  });

  it('a booking that failed when decided (SEATS_UNAVAILABLE) cannot be confirmed', async () => {
    const accepted = await call(api.app, 'POST', '/booking', { body: { show_id: showId, customer_email: 'x@example.com', seats: ['Stalls-A-1'] } });
    expect(await waitForDecision(api.app, accepted.body.id)).toMatchObject({ status: 'FAILED', reason: 'SEATS_UNAVAILABLE' });
    expectConflict(await confirm(accepted.body.id), 'BOOKING_FAILED');
    expectConflict(await cancel(accepted.body.id), 'BOOKING_FAILED');
  });
});

describe('cancel', () => {
  it('cancels a hold and releases its seats; cancelling or confirming it again is 409', async () => {
    const booking = await hold(['Stalls-B-1', 'Stalls-B-2', 'Stalls-B-3']);
    const cancelled = await cancel(booking.id);
    expect(cancelled.status).toBe(200);
    expect(cancelled.body).toMatchObject({ id: booking.id, status: 'CANCELLED', seats: booking.seats, hold_expires_at: null });
    expect(await seatRows(booking.seats)).toEqual(booking.seats.map((label) => ({ label, status: 'AVAILABLE', booking_id: null, hold_expires_at: null })));
    expect(await bookingRow(booking.id)).toMatchObject({ status: 'CANCELLED', seat_labels: booking.seats });

    expectConflict(await cancel(booking.id), 'BOOKING_CANCELLED');
    expectConflict(await confirm(booking.id), 'BOOKING_CANCELLED');
    expectConflict(await confirm(booking.id, 'fail'), 'BOOKING_CANCELLED');
  });

  it('cancelling a confirmed booking is 409 and keeps its seats booked', async () => {
    const booking = await hold(['Stalls-B-4']);
    expect((await confirm(booking.id)).status).toBe(200);
    expectConflict(await cancel(booking.id), 'BOOKING_CONFIRMED');
    expect(await seatRows(booking.seats)).toMatchObject([{ status: 'BOOKED', booking_id: booking.id }]);
    // A failed payment after success changes nothing either.
    expect((await confirm(booking.id, 'fail')).body).toMatchObject({ status: 'CONFIRMED' });
  });
});

describe('settles racing on one hold', () => {
  it('confirm, failed payment and cancel sent together: exactly one wins, the others see its result', async () => {
    // Any of the three may win, so these seats may end BOOKED: no later test may reuse them.
    for (const [index, labels] of [['Stalls-C-1'], ['Stalls-C-2', 'Stalls-C-3'], ['Stalls-C-4']].entries()) {
      const booking = await hold(labels, `racer${index}@example.com`);
      const replies = await Promise.all([confirm(booking.id), cancel(booking.id), confirm(booking.id, 'fail'), confirm(booking.id), cancel(booking.id)]);
      const final = await bookingRow(booking.id);
      expect(['CONFIRMED', 'CANCELLED', 'FAILED']).toContain(final.status);
      // Every 200 shows the one final state; every 409 names it.
      for (const reply of replies) {
        if (reply.status === 200) expect(reply.body.status).toBe(final.status);
        else expectConflict(reply, final.status === 'CONFIRMED' ? 'BOOKING_CONFIRMED' : final.status === 'CANCELLED' ? 'BOOKING_CANCELLED' : 'BOOKING_FAILED');
      }
      expect(replies.filter((reply) => reply.status === 200).length).toBeGreaterThanOrEqual(1);
      const seats = await seatRows(booking.seats);
      if (final.status === 'CONFIRMED') expect(seats).toMatchObject(labels.map(() => ({ status: 'BOOKED', booking_id: booking.id })));
      else expect(seats).toEqual(labels.map((label) => ({ label, status: 'AVAILABLE', booking_id: null, hold_expires_at: null })));
    }
  });
});

describe('a lapsed hold before the sweep reaches it', () => {
  /** Backdates a HELD booking and its seats, as if its hold ran out a moment ago. */
  async function lapse(id: string) {
    const client = await ctx.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query(`UPDATE bookings SET hold_expires_at = now() - interval '1 second' WHERE id = $1 AND status = 'HELD'`, [id]);
      const seats = await client.query(`UPDATE seats SET hold_expires_at = now() - interval '1 second' WHERE booking_id = $1 AND status = 'HELD'`, [id]);
      await client.query('COMMIT');
      return seats.rowCount;
    } catch (error) {
      await client.query('ROLLBACK');
      throw error;
    } finally {
      client.release();
    }
  }

  it('shows its seats as available at once', async () => {
    const booking = await hold(['Stalls-D-1', 'Stalls-D-2']);
    expect(await lapse(booking.id)).toBe(2);
    const seats = await call(api.app, 'GET', `/shows/${showId}/seats`);
    expect(seats.body.filter((s: any) => booking.seats.includes(s.label)).map((s: any) => s.status)).toEqual(['AVAILABLE', 'AVAILABLE']);
    expectConflict(await confirm(booking.id), 'HOLD_EXPIRED');
  });

  it('can never be confirmed: 409 HOLD_EXPIRED, the booking becomes EXPIRED and its seats AVAILABLE', async () => {
    const booking = await hold(['Stalls-D-3', 'Stalls-D-4']);
    expect(await lapse(booking.id)).toBe(2);
    // The sweep has not run (hourly) and the seats are still HELD in Postgres.
    expect((await bookingRow(booking.id)).status).toBe('HELD');
    expectConflict(await confirm(booking.id), 'HOLD_EXPIRED');
    expect(await bookingRow(booking.id)).toMatchObject({ status: 'EXPIRED', confirmed_at: null, seat_labels: booking.seats });
    expect(await seatRows(booking.seats)).toEqual(booking.seats.map((label) => ({ label, status: 'AVAILABLE', booking_id: null, hold_expires_at: null })));
    const status = await call(api.app, 'GET', `/booking/${booking.id}/status`);
    expect(status.body).toMatchObject({ status: 'EXPIRED', seats: booking.seats });
    // Still no: neither a second try, a failed payment, nor a cancel.
    expectConflict(await confirm(booking.id), 'HOLD_EXPIRED');
    expectConflict(await confirm(booking.id, 'fail'), 'HOLD_EXPIRED');
    expectConflict(await cancel(booking.id), 'HOLD_EXPIRED');
  });

  it('cannot be cancelled either (409 HOLD_EXPIRED), and is expired on the spot', async () => {
    const booking = await hold(['Stalls-D-5']);
    await lapse(booking.id);
    expectConflict(await cancel(booking.id), 'HOLD_EXPIRED');
    expect((await bookingRow(booking.id)).status).toBe('EXPIRED');
    expect(await seatRows(booking.seats)).toMatchObject([{ status: 'AVAILABLE', booking_id: null }]);
  });
});

describe('the scheduled sweep (HOLD_SECONDS=1, EXPIRY_INTERVAL_SECONDS=1)', () => {
  let sweepShow: string;

  beforeAll(async () => {
    // Only the fast worker may decide from here on, so every hold below lasts 1 s.
    await slowWorker.close();
    await ctx.startWorker({ HOLD_SECONDS: '1', EXPIRY_INTERVAL_SECONDS: '1' });
    sweepShow = (await createShow(api.app, { total_seats: 10 })).id;
  });

  it('expires a lapsed hold by itself and makes its seats AVAILABLE', async () => {
    const accepted = await call(api.app, 'POST', '/booking', { body: { show_id: sweepShow, customer_email: 'eve@example.com', seat_count: 3 } });
    expect(accepted.status).toBe(202);
    const id = accepted.body.id;

    // Nothing but the sweep touches this booking until it is EXPIRED: no confirm, no other claim.
    const read = () => ctx.pool.query('SELECT status, seat_labels, hold_expires_at, decided_at FROM bookings WHERE id = $1', [id]);
    const row = await waitFor(
      async () => {
        const result = await read();
        return result.rows[0]?.status === 'EXPIRED' ? result : undefined;
      },
      'the sweep to expire the hold',
      15_000,
    );
    // It had been held (its seats are kept for history) for HOLD_SECONDS.
    const booking = row.rows[0];
    expect(booking.seat_labels).toEqual(['1', '2', '3']);
    expect(booking.hold_expires_at.getTime() - booking.decided_at.getTime()).toBeGreaterThanOrEqual(900);
    expect(booking.hold_expires_at.getTime() - booking.decided_at.getTime()).toBeLessThanOrEqual(1_500);

    const seats = await ctx.pool.query('SELECT status, booking_id, hold_expires_at FROM seats WHERE show_id = $1', [sweepShow]);
    expect(seats.rows).toHaveLength(10);
    expect(seats.rows.every((seat) => seat.status === 'AVAILABLE' && seat.booking_id === null && seat.hold_expires_at === null)).toBe(true);
    const status = await call(api.app, 'GET', `/booking/${id}/status`);
    expect(status.body).toMatchObject({ status: 'EXPIRED', seats: ['1', '2', '3'] });
    expect((await call(api.app, 'GET', `/shows/${sweepShow}`)).body.available_seats).toBe(10);
    expectConflict(await confirm(id), 'HOLD_EXPIRED');
  });
});
