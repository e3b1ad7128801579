import { sql } from 'drizzle-orm';
import { check, customType, integer, pgTable, primaryKey, smallint, text, unique, uuid } from 'drizzle-orm/pg-core';
import { HOLD_SECONDS_RANGE, MAX_SEATS_PER_CUSTOMER_RANGE, WAITLIST_OFFER_SECONDS_RANGE } from '../../booking/limits.js';
import { MAX_SEATS_PER_SHOW } from '../../booking/layout.js';
import { between, createdAt, timestamptz } from './columns.js';

/** Raw bytes (the draw seed), read and written as a Buffer. */
const bytea = customType<{ data: Buffer; driverData: Buffer }>({ dataType: () => 'bytea' });

/**
 * A show and its sale schedule: the waiting room opens at `waiting_room_opens_at`, the sale at
 * `sales_open_at` (the draw of the waiting room), and closes at `sales_close_at`
 * (shared/booking/sale-schedule.ts computes the state from them). `hold_seconds` and
 * `max_seats_per_customer` override the environment's defaults when set. `draw_seed` stays
 * secret until the draw; `seed_sha256`, its commitment, is derived by Postgres so the two can
 * never disagree.
 */
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
    waitingRoomOpensAt: timestamptz('waiting_room_opens_at').notNull(),
    salesOpenAt: timestamptz('sales_open_at').notNull(),
    salesCloseAt: timestamptz('sales_close_at').notNull(),
    holdSeconds: integer('hold_seconds'),
    maxSeatsPerCustomer: integer('max_seats_per_customer'),
    pausedAt: timestamptz('paused_at'),
    drawSeed: bytea('draw_seed').notNull(),
    seedSha256: text('seed_sha256')
      .notNull()
      .generatedAlwaysAs(sql`encode(sha256(draw_seed), 'hex')`),
    // How long an offer from the waiting list holds its seats; null: WAITLIST_OFFER_SECONDS.
    waitlistOfferSeconds: integer('waitlist_offer_seconds'),
    // Set when an operator closed the waiting list (POST /admin/shows/:id/waitlist/close); the
    // list also closes at sales_close_at.
    waitlistClosedAt: timestamptz('waitlist_closed_at'),
  },
  (table) => [
    check('shows_total_seats_range', between(table.totalSeats, { min: 1, max: MAX_SEATS_PER_SHOW })),
    check('shows_waitlist_offer_seconds_range', between(table.waitlistOfferSeconds, WAITLIST_OFFER_SECONDS_RANGE)),
    check('shows_seating_valid', sql`${table.seating} IN ('general', 'reserved')`),
    check(
      'shows_sale_schedule_order',
      sql`${table.waitingRoomOpensAt} <= ${table.salesOpenAt} AND ${table.salesOpenAt} < ${table.salesCloseAt}`,
    ),
    check('shows_hold_seconds_range', between(table.holdSeconds, HOLD_SECONDS_RANGE)),
    check('shows_max_seats_per_customer_range', between(table.maxSeatsPerCustomer, MAX_SEATS_PER_CUSTOMER_RANGE)),
    check('shows_draw_seed_length', sql`octet_length(${table.drawSeed}) = 32`),
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
