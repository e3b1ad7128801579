import { sql } from 'drizzle-orm';
import { check, integer, pgTable, primaryKey, smallint, text, unique, uuid } from 'drizzle-orm/pg-core';
import { createdAt, timestamptz } from './columns.js';

export const shows = pgTable(
  'shows',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    name: text('name').notNull(),
    startTime: timestamptz('start_time').notNull(),
    totalSeats: integer('total_seats').notNull(),
    // 'general': one section "GA", seats labelled "1".."N"; 'reserved': labels "SECTION-ROW-NUMBER".
    seating: text('seating', { enum: ['general', 'reserved'] }).notNull(),
    createdAt: createdAt(),
    // How long an offer from the waiting list holds its seats; null: WAITLIST_OFFER_SECONDS.
    waitlistOfferSeconds: integer('waitlist_offer_seconds'),
    // Set when an operator closed the waiting list (POST /admin/shows/:id/waitlist/close); the
    // list also closes when sales close (the show's start).
    waitlistClosedAt: timestamptz('waitlist_closed_at'),
  },
  (table) => [
    check('shows_total_seats_range', sql`${table.totalSeats} BETWEEN 1 AND 100000`),
    check('shows_waitlist_offer_seconds_range', sql`${table.waitlistOfferSeconds} BETWEEN 1 AND 86400`),
    check('shows_seating_valid', sql`${table.seating} IN ('general', 'reserved')`),
  ],
);

/** A show's sections (tiers), in the order buyers prefer them: rank 0 is the best. */
export const showSections = pgTable(
  'show_sections',
  {
    showId: uuid('show_id')
      .notNull()
      .references(() => shows.id, { onDelete: 'cascade' }),
    rank: smallint('rank').notNull(),
    name: text('name').notNull(),
    rows: integer('rows').notNull(),
    seatsPerRow: integer('seats_per_row').notNull(),
    priceCents: integer('price_cents').notNull(),
  },
  (table) => [
    primaryKey({ columns: [table.showId, table.rank] }),
    unique('show_sections_name_unique').on(table.showId, table.name),
    check('show_sections_sizes_positive', sql`${table.rows} > 0 AND ${table.seatsPerRow} > 0`),
    check('show_sections_price_non_negative', sql`${table.priceCents} >= 0`),
  ],
);

export type Show = typeof shows.$inferSelect;
export type ShowSection = typeof showSections.$inferSelect;
