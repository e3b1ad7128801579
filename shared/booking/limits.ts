/**
 * The ranges of a sale's settings, one constant each for every place a value is set or kept:
 * the environment's default (shared/config.ts), a show's own value (the API's schemas for
 * POST/PATCH /admin/shows) and the CHECK constraints of Postgres (shared/db/schema). Changing
 * one here changes all three; the schema's CHECK then needs a migration (drizzle-kit generate).
 */

/** Inclusive bounds of an integer setting. */
export type IntRange = { readonly min: number; readonly max: number };

/** How long a hold keeps its seats (HOLD_SECONDS, a show's hold_seconds): up to a day. */
export const HOLD_SECONDS_RANGE: IntRange = { min: 1, max: 86_400 };

/** How long a waiting-list offer holds its seats (WAITLIST_OFFER_SECONDS, a show's waitlist_offer_seconds). */
export const WAITLIST_OFFER_SECONDS_RANGE: IntRange = { min: 1, max: 86_400 };

/**
 * Seats one customer may hold or own in a show (MAX_SEATS_PER_CUSTOMER, a show's
 * max_seats_per_customer). Its maximum also bounds a booking's seat_count in Postgres: no
 * booking can be larger than what its customer may have.
 */
export const MAX_SEATS_PER_CUSTOMER_RANGE: IntRange = { min: 1, max: 1_000 };
