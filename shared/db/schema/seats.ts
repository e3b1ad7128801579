import { sql } from 'drizzle-orm';
import { check, foreignKey, index, integer, pgTable, smallint, text, unique, uuid } from 'drizzle-orm/pg-core';
import { SEAT_STATUSES } from '../../booking/statuses.js';
import { literalList, timestamptz } from './columns.js';
import { bookings } from './bookings.js';
import { shows } from './shows.js';

/**
 * Seats are generated when a show is created. A seat's single `booking_id` column is what
 * makes double-selling impossible: a seat can reference one booking at a time, and the CHECKs
 * below tie status, booking and hold expiry together so no half-state can be stored. A taken
 * seat cannot be moved straight to another booking either (trigger seats_owner_immutable,
 * drizzle/0001_seat_owner_immutable.sql: drizzle cannot express triggers); it must be released first.
 */
export const seats = pgTable(
  'seats',
  {
    id: integer('id').primaryKey().generatedAlwaysAsIdentity(),
    showId: uuid('show_id')
      .notNull()
      .references(() => shows.id, { onDelete: 'cascade' }),
    label: text('label').notNull(),
    section: text('section').notNull(),
    // The section's rank among the show's sections, so "best available" is one index scan.
    sectionRank: smallint('section_rank').notNull(),
    row: smallint('row').notNull(),
    number: integer('number').notNull(),
    priceCents: integer('price_cents').notNull(),
    status: text('status', { enum: SEAT_STATUSES })
      .notNull()
      .default('AVAILABLE'),
    bookingId: uuid('booking_id'),
    holdExpiresAt: timestamptz('hold_expires_at'),
  },
  (table) => [
    unique('seats_label_unique').on(table.showId, table.label),
    unique('seats_position_unique').on(table.showId, table.sectionRank, table.row, table.number),
    // MATCH SIMPLE: an AVAILABLE seat (booking_id NULL) is unchecked; a taken one must point at
    // a booking of the same show.
    foreignKey({
      name: 'seats_booking_same_show_fk',
      columns: [table.bookingId, table.showId],
      foreignColumns: [bookings.id, bookings.showId],
    }),
    check('seats_status_valid', sql`${table.status} IN (${literalList(SEAT_STATUSES)})`),
    check('seats_taken_iff_booking', sql`(${table.status} = 'AVAILABLE') = (${table.bookingId} IS NULL)`),
    check('seats_held_iff_expiry', sql`(${table.status} = 'HELD') = (${table.holdExpiresAt} IS NOT NULL)`),
    check('seats_price_non_negative', sql`${table.priceCents} >= 0`),
    // The claim query: the first AVAILABLE seats of a show (optionally one section) in seat
    // order. Partial, so taken seats drop out of it and a sold-out show scans nothing.
    index('seats_claim_idx')
      .on(table.showId, table.sectionRank, table.row, table.number)
      .where(sql`${table.status} = 'AVAILABLE'`),
    // Releasing a booking's seats (confirm, cancel, expiry) finds them by booking.
    index('seats_booking_idx')
      .on(table.bookingId)
      .where(sql`${table.bookingId} IS NOT NULL`),
  ],
);

export type Seat = typeof seats.$inferSelect;
