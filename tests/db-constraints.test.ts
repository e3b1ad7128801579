import { randomUUID } from 'node:crypto';
import type { DatabaseError } from 'pg';
import { beforeAll, describe, expect, it } from 'vitest';
import { createShow, generalAdmission } from '../shared/booking/shows.js';
import { openTestContext } from './support/context.js';

/**
 * The schema itself must make double-selling and half-states impossible, even if application
 * code were wrong. Each case below plays the buggy code: it writes a bad state straight into
 * Postgres with SQL, and the database must refuse it with an integrity error (SQLSTATE 23xxx)
 * naming the constraint. The fixtures are valid, so a refusal can only come from the one thing
 * each case breaks; the last tests show the legitimate paths still pass.
 */

const ctx = await openTestContext({ DB_POOL_SIZE: '2' });

/** Seat ids by label ("1".."10") of show A, and of show B. */
type Fixture = {
  showA: string;
  showB: string;
  seat: (label: string) => number;
  seatB: (label: string) => number;
  /** HELD, seat 1. */
  held: string;
  /** CONFIRMED, seat 2 BOOKED. */
  confirmed: string;
  /** HELD, seat 3: another live booking of show A. */
  other: string;
  /** FAILED (SOLD_OUT), no seats. */
  failed: string;
  /** HELD on show B, seat B-1. */
  heldB: string;
};
let f: Fixture;

async function seatIds(showId: string): Promise<Map<string, number>> {
  const { rows } = await ctx.pool.query<{ id: number; label: string }>('SELECT id, label FROM seats WHERE show_id = $1', [showId]);
  return new Map(rows.map((row) => [row.label, row.id]));
}

/** A booking row as the worker writes it, with its seats taken as the claim takes them. */
async function insertBooking(showId: string, status: 'HELD' | 'CONFIRMED' | 'FAILED', seats: number[]): Promise<string> {
  const id = randomUUID();
  const client = await ctx.pool.connect();
  try {
    await client.query('BEGIN');
    await client.query(
      `INSERT INTO bookings (id, show_id, customer_email, seat_count, status, failure_reason, hold_expires_at, confirmed_at,
                             accepted_at, decided_at, seat_ids, seat_labels)
       SELECT $1, $2, 'fixture@example.com', greatest(cardinality($4::int[]), 1), $3,
              CASE WHEN $3 = 'FAILED' THEN 'SOLD_OUT' END,
              CASE WHEN $3 = 'HELD' THEN now() + interval '10 minutes' END,
              CASE WHEN $3 = 'CONFIRMED' THEN now() END,
              now(), now(), $4::int[], ARRAY(SELECT label FROM seats WHERE id = ANY($4::int[]) ORDER BY array_position($4::int[], id))`,
      [id, showId, status, seats],
    );
    if (seats.length > 0) {
      await client.query(
        `UPDATE seats SET status = $2, booking_id = $1,
                hold_expires_at = CASE WHEN $2 = 'HELD' THEN now() + interval '10 minutes' END
         WHERE id = ANY($3::int[]) AND status = 'AVAILABLE'`,
        [id, status === 'HELD' ? 'HELD' : 'BOOKED', seats],
      );
    }
    await client.query('COMMIT');
    return id;
  } catch (error) {
    await client.query('ROLLBACK');
    throw error;
  } finally {
    client.release();
  }
}

beforeAll(async () => {
  const startTime = new Date('2030-01-01T20:00:00Z');
  const showA = (await createShow(ctx.db, { name: 'Constraints A', startTime, layout: generalAdmission(10) })).id;
  const showB = (await createShow(ctx.db, { name: 'Constraints B', startTime, layout: generalAdmission(5) })).id;
  const [a, b] = [await seatIds(showA), await seatIds(showB)];
  const seat = (label: string) => a.get(label)!;
  const seatB = (label: string) => b.get(label)!;
  f = {
    showA,
    showB,
    seat,
    seatB,
    held: await insertBooking(showA, 'HELD', [seat('1')]),
    confirmed: await insertBooking(showA, 'CONFIRMED', [seat('2')]),
    other: await insertBooking(showA, 'HELD', [seat('3')]),
    failed: await insertBooking(showA, 'FAILED', []),
    heldB: await insertBooking(showB, 'HELD', [seatB('1')]),
  };
});

/**
 * Runs one statement that must be refused and returns Postgres's error. It runs in a
 * transaction that is always rolled back, so a statement wrongly accepted fails its own case
 * without corrupting the fixtures of the next.
 */
async function refusal(statement: string, params: unknown[]): Promise<DatabaseError> {
  const client = await ctx.pool.connect();
  try {
    await client.query('BEGIN');
    await client.query(statement, params);
  } catch (error) {
    return error as DatabaseError;
  } finally {
    await client.query('ROLLBACK');
    client.release();
  }
  throw new Error(`accepted: ${statement} ${JSON.stringify(params)}`);
}

type Case = { name: string; code: string; constraint?: string; column?: string; sql: () => [string, unknown[]] };

const INSERT_SEAT = `INSERT INTO seats (show_id, label, section, section_rank, row, number, price_cents) VALUES ($1, $2, 'GA', 0, 1, $3, $4)`;
const INSERT_BOOKING = `INSERT INTO bookings (id, show_id, customer_email, seat_count, status, failure_reason, hold_expires_at,
                                              confirmed_at, accepted_at, decided_at, seat_ids, seat_labels)
                        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now(), now(), $9, $10)`;
const later = () => new Date(Date.now() + 600_000);

const seatCases: Case[] = [
  {
    name: 'a seat HELD without a booking',
    code: '23514',
    constraint: 'seats_taken_iff_booking',
    sql: () => [`UPDATE seats SET status = 'HELD', hold_expires_at = now() + interval '1 minute' WHERE id = $1`, [f.seat('4')]],
  },
  {
    name: 'a seat BOOKED without a booking',
    code: '23514',
    constraint: 'seats_taken_iff_booking',
    sql: () => [`UPDATE seats SET status = 'BOOKED' WHERE id = $1`, [f.seat('4')]],
  },
  {
    name: 'an AVAILABLE seat pointing at a booking',
    code: '23514',
    constraint: 'seats_taken_iff_booking',
    sql: () => [`UPDATE seats SET booking_id = $2 WHERE id = $1`, [f.seat('4'), f.other]],
  },
  {
    name: 'a seat made AVAILABLE that still points at its booking',
    code: '23514',
    constraint: 'seats_taken_iff_booking',
    sql: () => [`UPDATE seats SET status = 'AVAILABLE', hold_expires_at = NULL WHERE id = $1`, [f.seat('1')]],
  },
  {
    name: 'a seat HELD without hold_expires_at',
    code: '23514',
    constraint: 'seats_held_iff_expiry',
    sql: () => [`UPDATE seats SET status = 'HELD', booking_id = $2 WHERE id = $1`, [f.seat('4'), f.other]],
  },
  {
    name: 'a BOOKED seat that keeps a hold expiry',
    code: '23514',
    constraint: 'seats_held_iff_expiry',
    sql: () => [`UPDATE seats SET status = 'BOOKED' WHERE id = $1`, [f.seat('1')]],
  },
  {
    name: 'a seat status outside the enum',
    code: '23514',
    constraint: 'seats_status_valid',
    sql: () => [`UPDATE seats SET status = 'SOLD' WHERE id = $1`, [f.seat('2')]],
  },
  {
    name: 'a seat pointing at a booking of another show',
    code: '23503',
    constraint: 'seats_booking_same_show_fk',
    sql: () => [
      `UPDATE seats SET status = 'HELD', booking_id = $2, hold_expires_at = now() + interval '1 minute' WHERE id = $1`,
      [f.seat('4'), f.heldB],
    ],
  },
  {
    name: 'a seat pointing at a booking that does not exist',
    code: '23503',
    constraint: 'seats_booking_same_show_fk',
    sql: () => [
      `UPDATE seats SET status = 'HELD', booking_id = $2, hold_expires_at = now() + interval '1 minute' WHERE id = $1`,
      [f.seat('4'), randomUUID()],
    ],
  },
  {
    name: 'a HELD seat moved straight to another booking (taken from a live hold)',
    code: '23514',
    constraint: 'seats_owner_immutable',
    sql: () => [`UPDATE seats SET booking_id = $2 WHERE id = $1`, [f.seat('1'), f.other]],
  },
  {
    name: 'a BOOKED seat moved to another booking as a new hold (a paid seat resold)',
    code: '23514',
    constraint: 'seats_owner_immutable',
    sql: () => [
      `UPDATE seats SET booking_id = $2, status = 'HELD', hold_expires_at = now() + interval '1 minute' WHERE id = $1`,
      [f.seat('2'), f.other],
    ],
  },
  {
    name: 'a booking deleted while a seat still points at it',
    code: '23503',
    constraint: 'seats_booking_same_show_fk',
    sql: () => [`DELETE FROM bookings WHERE id = $1`, [f.held]],
  },
  {
    name: 'a duplicate seat label in a show',
    code: '23505',
    constraint: 'seats_label_unique',
    sql: () => [INSERT_SEAT, [f.showA, '1', 99, 0]],
  },
  {
    name: 'two seats at one position',
    code: '23505',
    constraint: 'seats_position_unique',
    sql: () => [INSERT_SEAT, [f.showA, '1bis', 1, 0]],
  },
  {
    name: 'a negative seat price',
    code: '23514',
    constraint: 'seats_price_non_negative',
    sql: () => [INSERT_SEAT, [f.showA, '99', 99, -1]],
  },
];

const bookingCases: Case[] = [
  {
    name: 'a booking status outside the enum (QUEUED lives only in Redis)',
    code: '23514',
    constraint: 'bookings_status_valid',
    sql: () => [`UPDATE bookings SET status = 'QUEUED', failure_reason = NULL WHERE id = $1`, [f.failed]],
  },
  {
    name: 'a WAITLISTED booking holding seats',
    code: '23514',
    constraint: 'bookings_waitlisted_no_seats',
    sql: () => [`UPDATE bookings SET status = 'WAITLISTED', hold_expires_at = NULL, waitlisted_at = now() WHERE id = $1`, [f.held]],
  },
  {
    name: 'a WAITLISTED booking without waitlisted_at',
    code: '23514',
    constraint: 'bookings_waitlisted_since',
    sql: () => [`UPDATE bookings SET status = 'WAITLISTED', failure_reason = NULL WHERE id = $1`, [f.failed]],
  },
  {
    name: 'a REFUNDED booking without the seats it had',
    code: '23514',
    constraint: 'bookings_seats_match_count',
    sql: () => [`UPDATE bookings SET status = 'REFUNDED', failure_reason = NULL, confirmed_at = now() WHERE id = $1`, [f.failed]],
  },
  {
    name: 'a CONFIRMED booking without confirmed_at',
    code: '23514',
    constraint: 'bookings_confirmed_consistent',
    sql: () => [`UPDATE bookings SET status = 'CONFIRMED' WHERE id = $1`, [f.held]],
  },
  {
    name: 'a HELD booking with confirmed_at',
    code: '23514',
    constraint: 'bookings_confirmed_consistent',
    sql: () => [`UPDATE bookings SET confirmed_at = now() WHERE id = $1`, [f.held]],
  },
  {
    name: 'a FAILED booking without a reason',
    code: '23514',
    constraint: 'bookings_failed_has_reason',
    sql: () => [`UPDATE bookings SET failure_reason = NULL WHERE id = $1`, [f.failed]],
  },
  {
    name: 'a failure reason on a booking that did not fail',
    code: '23514',
    constraint: 'bookings_failed_has_reason',
    sql: () => [`UPDATE bookings SET failure_reason = 'SOLD_OUT' WHERE id = $1`, [f.held]],
  },
  {
    name: 'a HELD booking without hold_expires_at',
    code: '23514',
    constraint: 'bookings_held_has_expiry',
    sql: () => [`UPDATE bookings SET hold_expires_at = NULL WHERE id = $1`, [f.held]],
  },
  {
    name: 'a HELD booking listing more seats than seat_count',
    code: '23514',
    constraint: 'bookings_seats_match_count',
    sql: () => [
      `UPDATE bookings SET seat_ids = seat_ids || $2::int, seat_labels = seat_labels || '4'::text WHERE id = $1`,
      [f.held, f.seat('4')],
    ],
  },
  {
    name: 'a CONFIRMED booking listing no seats',
    code: '23514',
    constraint: 'bookings_seats_match_count',
    sql: () => [`UPDATE bookings SET seat_ids = '{}', seat_labels = '{}' WHERE id = $1`, [f.confirmed]],
  },
  {
    name: 'seat labels that do not match the seat ids',
    code: '23514',
    constraint: 'bookings_labels_match_ids',
    sql: () => [`UPDATE bookings SET seat_labels = '{}' WHERE id = $1`, [f.held]],
  },
  {
    name: 'a booking of zero seats',
    code: '23514',
    constraint: 'bookings_seat_count_positive',
    sql: () => [INSERT_BOOKING, [randomUUID(), f.showA, 'x@example.com', 0, 'FAILED', 'SOLD_OUT', null, null, [], []]],
  },
  {
    name: 'a second booking row for the same request id',
    code: '23505',
    constraint: 'bookings_pkey',
    sql: () => [INSERT_BOOKING, [f.failed, f.showA, 'x@example.com', 1, 'FAILED', 'SOLD_OUT', null, null, [], []]],
  },
  {
    name: 'a booking for a show that does not exist',
    code: '23503',
    constraint: 'bookings_show_id_shows_id_fk',
    sql: () => [INSERT_BOOKING, [randomUUID(), randomUUID(), 'x@example.com', 1, 'FAILED', 'SOLD_OUT', null, null, [], []]],
  },
  {
    name: 'a booking without a customer',
    code: '23502',
    column: 'customer_email',
    sql: () => [INSERT_BOOKING, [randomUUID(), f.showA, null, 1, 'HELD', null, later(), null, [f.seat('5')], ['5']]],
  },
];

// A valid schedule and seed, so each case trips only the constraint it names.
const SHOW_COLUMNS = 'name, start_time, total_seats, seating, waiting_room_opens_at, sales_open_at, sales_close_at, draw_seed';
const SCHEDULE_VALUES = `now(), now(), now() + interval '1 day', sha256('seed'::bytea)`;
const scheduleCase = (name: string, constraint: string, values: string): Case => ({
  name,
  code: '23514',
  constraint,
  sql: () => [`INSERT INTO shows (${SHOW_COLUMNS}, hold_seconds, max_seats_per_customer) VALUES ('x', now(), 10, 'general', ${values})`, []],
});

const showCases: Case[] = [
  scheduleCase('a waiting room opening after the sale', 'shows_sale_schedule_order', `now() + interval '1 hour', now(), now() + interval '1 day', sha256('s'::bytea), null, null`),
  scheduleCase('a sale closing when it opens', 'shows_sale_schedule_order', `now(), now(), now(), sha256('s'::bytea), null, null`),
  scheduleCase('a hold of zero seconds', 'shows_hold_seconds_range', `${SCHEDULE_VALUES}, 0, null`),
  scheduleCase('a per-customer limit of zero', 'shows_max_seats_per_customer_range', `${SCHEDULE_VALUES}, null, 0`),
  scheduleCase('a draw seed of 16 bytes', 'shows_draw_seed_length', `now(), now(), now() + interval '1 day', '\\x00112233445566778899aabbccddeeff'::bytea, null, null`),
  {
    name: 'a show of zero seats',
    code: '23514',
    constraint: 'shows_total_seats_range',
    sql: () => [`INSERT INTO shows (${SHOW_COLUMNS}) VALUES ('x', now(), 0, 'general', ${SCHEDULE_VALUES})`, []],
  },
  {
    name: 'a seating kind outside the enum',
    code: '23514',
    constraint: 'shows_seating_valid',
    sql: () => [`INSERT INTO shows (${SHOW_COLUMNS}) VALUES ('x', now(), 10, 'standing', ${SCHEDULE_VALUES})`, []],
  },
  {
    name: 'a section with no rows',
    code: '23514',
    constraint: 'show_sections_sizes_positive',
    sql: () => [`INSERT INTO show_sections (show_id, rank, name, rows, seats_per_row, price_cents) VALUES ($1, 7, 'Z', 0, 5, 0)`, [f.showA]],
  },
  {
    name: 'two sections with one name',
    code: '23505',
    constraint: 'show_sections_name_unique',
    sql: () => [`INSERT INTO show_sections (show_id, rank, name, rows, seats_per_row, price_cents) VALUES ($1, 7, 'GA', 1, 5, 0)`, [f.showA]],
  },
];

describe('the database refuses what application code must never write', () => {
  it.each([...seatCases, ...bookingCases, ...showCases])('$name → $code $constraint', async (testCase) => {
    const [statement, params] = testCase.sql();
    const error = await refusal(statement, params);
    expect(error.code, error.message).toBe(testCase.code);
    expect(error.code?.startsWith('23')).toBe(true);
    if (testCase.constraint) expect(error.constraint).toBe(testCase.constraint);
    if (testCase.column) expect(error.column).toBe(testCase.column);
  });

  it('left every fixture as it was', async () => {
    const { rows } = await ctx.pool.query(
      `SELECT s.label, s.status, b.id AS booking, b.status AS booking_status
       FROM seats s LEFT JOIN bookings b ON b.id = s.booking_id WHERE s.show_id = $1 ORDER BY s.number`,
      [f.showA],
    );
    expect(rows.slice(0, 4)).toEqual([
      { label: '1', status: 'HELD', booking: f.held, booking_status: 'HELD' },
      { label: '2', status: 'BOOKED', booking: f.confirmed, booking_status: 'CONFIRMED' },
      { label: '3', status: 'HELD', booking: f.other, booking_status: 'HELD' },
      { label: '4', status: 'AVAILABLE', booking: null, booking_status: null },
    ]);
    expect(rows.slice(4).every((row) => row.status === 'AVAILABLE')).toBe(true);
  });
});

describe('two bookings can never hold one seat', () => {
  it('a seat has one booking_id: the claim shape cannot take a held seat, and a repoint is refused', async () => {
    // The claim's own UPDATE only takes AVAILABLE seats: against a held seat it changes nothing.
    const claim = await ctx.pool.query(
      `UPDATE seats SET status = 'HELD', booking_id = $2, hold_expires_at = now() + interval '1 minute'
       WHERE id = $1 AND status = 'AVAILABLE'`,
      [f.seat('1'), f.other],
    );
    expect(claim.rowCount).toBe(0);
    // Code that forgot that guard is refused by the database (seats_owner_immutable), also in
    // a multi-row statement: nothing of it is applied.
    const error = await refusal(
      `UPDATE seats SET booking_id = $2 WHERE id = ANY($1::int[]) AND status <> 'AVAILABLE'`,
      [[f.seat('1'), f.seat('2'), f.seat('3')], f.other],
    );
    expect(error).toMatchObject({ code: '23514', constraint: 'seats_owner_immutable' });
    const { rows } = await ctx.pool.query('SELECT booking_id FROM seats WHERE id = ANY($1::int[]) ORDER BY id', [[f.seat('1'), f.seat('2')]]);
    expect(rows.map((row) => row.booking_id)).toEqual([f.held, f.confirmed]);
  });

  it('the legitimate path still works: release the seat, then another booking takes it, in one transaction', async () => {
    const client = await ctx.pool.connect();
    try {
      await client.query('BEGIN');
      // As the expiry sweep does: the hold ends and its seat goes back to AVAILABLE ...
      await client.query(`UPDATE bookings SET status = 'EXPIRED', updated_at = now() WHERE id = $1`, [f.other]);
      await client.query(`UPDATE seats SET status = 'AVAILABLE', booking_id = NULL, hold_expires_at = NULL WHERE id = $1`, [f.seat('3')]);
      // ... and a new claim takes it.
      const next = randomUUID();
      await client.query(INSERT_BOOKING, [next, f.showA, 'next@example.com', 1, 'HELD', null, later(), null, [f.seat('3')], ['3']]);
      const taken = await client.query(
        `UPDATE seats SET status = 'HELD', booking_id = $2, hold_expires_at = now() + interval '1 minute' WHERE id = $1 AND status = 'AVAILABLE'`,
        [f.seat('3'), next],
      );
      expect(taken.rowCount).toBe(1);
      // Confirming and a failed payment are status changes that keep or drop the booking: allowed.
      await client.query(`UPDATE seats SET status = 'BOOKED', hold_expires_at = NULL WHERE id = $1`, [f.seat('3')]);
      await client.query(`UPDATE bookings SET status = 'CONFIRMED', confirmed_at = now() WHERE id = $1`, [next]);
      await client.query('COMMIT');
    } catch (error) {
      await client.query('ROLLBACK');
      throw error;
    } finally {
      client.release();
    }
  });
});
