import { sql } from 'drizzle-orm';
import { bigint, check, index, integer, pgTable, text, unique, uuid } from 'drizzle-orm/pg-core';
import { DECIDED_STATUSES, FAILURE_REASONS } from '../../booking/statuses.js';
import { MAX_SEATS_PER_CUSTOMER_RANGE } from '../../booking/limits.js';
import { between, literalList, timestamptz, updatedAt } from './columns.js';
import { shows } from './shows.js';

/**
 * A booking row is written by the worker when it decides a request, in the same transaction
 * that claims its seats; while a request waits in the queue it lives only in Redis. So the
 * statuses stored here are the decided ones: QUEUED never reaches Postgres.
 */
export const bookings = pgTable(
  'bookings',
  {
    // The request id handed to the client at 202: a random UUID, so it cannot be guessed.
    id: uuid('id').primaryKey(),
    showId: uuid('show_id')
      .notNull()
      .references(() => shows.id),
    customerEmail: text('customer_email').notNull(),
    seatCount: integer('seat_count').notNull(),
    requestedSection: text('requested_section'),
    requestedSeats: text('requested_seats').array(),
    status: text('status', { enum: DECIDED_STATUSES }).notNull(),
    failureReason: text('failure_reason', { enum: FAILURE_REASONS }),
    holdExpiresAt: timestamptz('hold_expires_at'),
    idempotencyKey: text('idempotency_key'),
    acceptedAt: timestamptz('accepted_at').notNull(),
    decidedAt: timestamptz('decided_at').notNull(),
    confirmedAt: timestamptz('confirmed_at'),
    updatedAt: updatedAt(),
    // The seats this booking held, kept after the hold ends so history survives release.
    seatIds: integer('seat_ids').array().notNull().default(sql`'{}'`),
    seatLabels: text('seat_labels').array().notNull().default(sql`'{}'`),
    // What the seats in seat_ids cost, summed when they were claimed (seat prices never change):
    // the booking keeps its price after the hold ends, like its seat list; 0 if it got no seats.
    // bigint: 100 seats at the highest section price overflow an integer.
    totalCents: bigint('total_cents', { mode: 'number' }).notNull().default(0),
    // When the request joined the show's waiting list; kept after an offer (HELD from the list),
    // so it also says "this hold came from the waiting list". Null for a booking that never waited.
    waitlistedAt: timestamptz('waitlisted_at'),
  },
  (table) => [
    // Target of the seats' composite foreign key: a seat can only point at a booking of its own show.
    unique('bookings_id_show_unique').on(table.id, table.showId),
    check('bookings_status_valid', sql`${table.status} IN (${literalList(DECIDED_STATUSES)})`),
    check('bookings_seat_count_positive', between(table.seatCount, { min: 1, max: MAX_SEATS_PER_CUSTOMER_RANGE.max })),
    check('bookings_failed_has_reason', sql`(${table.status} = 'FAILED') = (${table.failureReason} IS NOT NULL)`),
    check('bookings_held_has_expiry', sql`${table.status} <> 'HELD' OR ${table.holdExpiresAt} IS NOT NULL`),
    check(
      'bookings_confirmed_consistent',
      // A refunded booking was confirmed, and keeps when.
      sql`(${table.status} IN ('CONFIRMED', 'REFUNDED')) = (${table.confirmedAt} IS NOT NULL)`,
    ),
    // Every booking that got seats holds (or held) exactly the seats it asked for: all but a
    // FAILED or WAITLISTED one, and a CANCELLED one that never held any (it left the line before
    // any decision, or left the waiting list).
    check(
      'bookings_seats_match_count',
      sql`${table.status} NOT IN (${literalList(DECIDED_STATUSES.filter((status) => status !== 'FAILED' && status !== 'WAITLISTED'))}) OR cardinality(${table.seatIds}) = ${table.seatCount} OR (${table.status} = 'CANCELLED' AND cardinality(${table.seatIds}) = 0)`,
    ),
    // A booking on the waiting list holds no seat (it is waiting for one) and knows since when.
    check('bookings_waitlisted_no_seats', sql`${table.status} <> 'WAITLISTED' OR cardinality(${table.seatIds}) = 0`),
    check('bookings_waitlisted_since', sql`${table.status} <> 'WAITLISTED' OR ${table.waitlistedAt} IS NOT NULL`),
    check('bookings_labels_match_ids', sql`cardinality(${table.seatIds}) = cardinality(${table.seatLabels})`),
    check('bookings_total_cents_non_negative', sql`${table.totalCents} >= 0`),
    // The expiry sweep scans only live holds, oldest first; a partial index keeps it tiny
    // however many decided bookings accumulate.
    index('bookings_hold_expiry_idx')
      .on(table.holdExpiresAt)
      .where(sql`${table.status} = 'HELD'`),
    // "Does this show have lapsed holds?" is asked by every claim that comes up short and by the
    // sold-out fast path; without it the planner may walk every live booking of a hot show.
    index('bookings_show_hold_expiry_idx')
      .on(table.showId, table.holdExpiresAt)
      .where(sql`${table.status} = 'HELD'`),
    // The per-customer cap counts a customer's live seats for one show inside every claim
    // (a place on the waiting list counts as the seats it waits for).
    index('bookings_customer_live_idx')
      .on(table.showId, table.customerEmail)
      .where(sql`${table.status} IN ('HELD', 'CONFIRMED', 'WAITLISTED')`),
    // The waiting list of a show in order: offers walk it from the front, a position counts the
    // entries ahead. Partial, so it holds only the entries still waiting.
    index('bookings_waitlist_idx')
      .on(table.showId, table.waitlistedAt, table.id)
      .where(sql`${table.status} = 'WAITLISTED'`),
  ],
);

export type Booking = typeof bookings.$inferSelect;
export type NewBooking = typeof bookings.$inferInsert;
