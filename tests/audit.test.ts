import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { auditBookings, type AuditReport } from '../bench/lib/audit.js';
import { createShow, generalAdmission } from '../shared/booking/shows.js';
import { openTestContext } from './support/context.js';

/**
 * The burst tool's audit must catch what it exists to catch. Each case plants a fault directly
 * in a test database (as a bug in the pipeline would leave it) and checks the audit fails on
 * exactly that check, next to a clean show that passes.
 */

const ctx = await openTestContext();

async function newShow(seats: number): Promise<{ id: string; seatIds: number[] }> {
  const show = await createShow(ctx.db, { name: 'Audit show', startTime: new Date('2030-01-01T20:00:00Z'), layout: generalAdmission(seats) });
  const { rows } = await ctx.pool.query('SELECT id FROM seats WHERE show_id = $1 ORDER BY number', [show.id]);
  return { id: show.id, seatIds: rows.map((row: { id: number }) => row.id) };
}

/** A booking row as the worker writes it: HELD with its seats, or FAILED with a reason. */
async function insertBooking(showId: string, booking: { status: 'HELD' | 'FAILED'; seatIds?: number[]; reason?: string; seatCount?: number }) {
  const id = randomUUID();
  const seatIds = booking.seatIds ?? [];
  await ctx.pool.query(
    `INSERT INTO bookings (id, show_id, customer_email, seat_count, status, failure_reason, hold_expires_at,
                           accepted_at, decided_at, seat_ids, seat_labels)
     SELECT $1, $2, 'audit@example.com', $3, $4, $5,
            CASE WHEN $4 = 'HELD' THEN now() + interval '10 minutes' END, now(), now(),
            $6::int[], ARRAY(SELECT label FROM seats WHERE id = ANY($6::int[]) ORDER BY array_position($6::int[], id))`,
    [id, showId, booking.seatCount ?? Math.max(1, seatIds.length), booking.status, booking.reason ?? null, seatIds],
  );
  return id;
}

/** Points seats at a booking, as the claim does. */
async function holdSeats(bookingId: string, seatIds: number[]) {
  await ctx.pool.query(
    `UPDATE seats SET status = 'HELD', booking_id = $1, hold_expires_at = now() + interval '10 minutes' WHERE id = ANY($2::int[])`,
    [bookingId, seatIds],
  );
}

const failed = (report: AuditReport) => report.checks.filter((c) => !c.ok).map((c) => c.name);

describe('audit', () => {
  it('passes a consistent show: holds pointing both ways, sold out only once the seats are gone', async () => {
    const show = await newShow(2);
    const ids = [];
    for (const seat of show.seatIds) {
      const id = await insertBooking(show.id, { status: 'HELD', seatIds: [seat] });
      await holdSeats(id, [seat]);
      ids.push(id);
    }
    ids.push(await insertBooking(show.id, { status: 'FAILED', reason: 'SOLD_OUT' }));
    const report = await auditBookings(ctx.pool, { showIds: [show.id], acceptedIds: ids });
    expect(failed(report)).toEqual([]);
    expect(report.ok).toBe(true);
  });

  it('fails on a planted double booking: one seat in two live bookings', async () => {
    const show = await newShow(5);
    const first = await insertBooking(show.id, { status: 'HELD', seatIds: [show.seatIds[0]!] });
    await holdSeats(first, [show.seatIds[0]!]);
    // The bug: a second booking believes it holds the same seat.
    const second = await insertBooking(show.id, { status: 'HELD', seatIds: [show.seatIds[0]!] });
    const report = await auditBookings(ctx.pool, { showIds: [show.id], acceptedIds: [first, second] });
    expect(report.ok).toBe(false);
    const double = report.checks.find((c) => c.name === 'no-double-booking')!;
    expect(double).toMatchObject({ ok: false, violations: 1 });
    expect(double.examples[0]).toContain(first);
    expect(double.examples[0]).toContain(second);
    // The seat points at one of them only, so the seat map disagrees too.
    expect(failed(report)).toContain('seat-map-agrees');
    expect(failed(report)).not.toContain('no-lost-request');
  });

  it('fails on a planted lost request: accepted but never decided', async () => {
    const show = await newShow(5);
    const decided = await insertBooking(show.id, { status: 'HELD', seatIds: [show.seatIds[0]!] });
    await holdSeats(decided, [show.seatIds[0]!]);
    const lost = randomUUID(); // the API said 202 for it; no worker ever wrote its booking
    const report = await auditBookings(ctx.pool, { showIds: [show.id], acceptedIds: [decided, lost] });
    expect(report.ok).toBe(false);
    expect(failed(report)).toEqual(['no-lost-request']);
    expect(report.checks.find((c) => c.name === 'no-lost-request')!.examples).toEqual([`request ${lost} was accepted but has no booking`]);
  });

  it('fails when single-seat requests were failed SOLD_OUT while seats stayed AVAILABLE', async () => {
    const show = await newShow(3);
    const held = await insertBooking(show.id, { status: 'HELD', seatIds: [show.seatIds[0]!] });
    await holdSeats(held, [show.seatIds[0]!]);
    // A false sold out: two seats were never taken. decided_at is pushed past the grace.
    const soldOut = await insertBooking(show.id, { status: 'FAILED', reason: 'SOLD_OUT' });
    await ctx.pool.query(`UPDATE bookings SET decided_at = now() + interval '1 minute' WHERE id = $1`, [soldOut]);
    const report = await auditBookings(ctx.pool, { showIds: [show.id], acceptedIds: [held, soldOut] });
    expect(failed(report)).toEqual(['no-seat-left-available']);
    expect(report.checks.find((c) => c.name === 'no-seat-left-available')!.violations).toBe(2);
  });

  it('fails when a seat is taken by a booking that does not list it', async () => {
    const show = await newShow(3);
    const booking = await insertBooking(show.id, { status: 'HELD', seatIds: [show.seatIds[0]!] });
    await holdSeats(booking, [show.seatIds[0]!, show.seatIds[1]!]);
    const report = await auditBookings(ctx.pool, { showIds: [show.id], acceptedIds: [booking] });
    expect(failed(report)).toEqual(['seat-map-agrees']);
  });

  it('fails when a seat is AVAILABLE while a WAITLISTED entry it fits waits; not when the entry needs more', async () => {
    const show = await newShow(3);
    const held = await insertBooking(show.id, { status: 'HELD', seatIds: [show.seatIds[0]!, show.seatIds[1]!], seatCount: 2 });
    await holdSeats(held, [show.seatIds[0]!, show.seatIds[1]!]);
    const waitlist = async (seatCount: number) => {
      const id = await insertBooking(show.id, { status: 'FAILED', reason: 'SOLD_OUT', seatCount });
      await ctx.pool.query(`UPDATE bookings SET status = 'WAITLISTED', failure_reason = NULL, waitlisted_at = now() WHERE id = $1`, [id]);
      return id;
    };
    // One seat free: an entry of two does not fit it, so it may wait.
    const pair = await waitlist(2);
    expect(failed(await auditBookings(ctx.pool, { showIds: [show.id], acceptedIds: [held, pair] }))).toEqual([]);
    // The bug: an entry of one waits beside the free seat, which no offer gave it.
    const single = await waitlist(1);
    const report = await auditBookings(ctx.pool, { showIds: [show.id], acceptedIds: [held, pair, single] });
    expect(failed(report)).toEqual(['no-seat-available-while-waitlisted']);
    expect(report.checks.find((c) => c.name === 'no-seat-available-while-waitlisted')!.examples).toEqual([
      `show ${show.id}: 1 seat(s) free while entry ${single} waits for 1`,
    ]);
  });
});
