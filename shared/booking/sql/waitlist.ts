import { sql, type SQL } from 'drizzle-orm';
import { STATEMENT_NOW } from '../../db/clock.js';

/**
 * The waiting list's statements (shared/booking/waitlist.ts runs them). A show's list is its
 * WAITLISTED bookings in the order they joined (waitlisted_at, then id), served by the partial
 * index bookings_waitlist_idx.
 */

/**
 * The waiting list's lock for one show (waitlist_lock_key in drizzle/0007_waiting_list.sql):
 * held until the transaction ends by whoever frees seats of the show, joins its list or offers
 * seats to it. Taking it twice in one transaction is harmless (advisory locks stack).
 */
export const lockWaitlist = (showId: string): SQL => sql`SELECT pg_advisory_xact_lock(waitlist_lock_key(${showId}::uuid))`;

export const waitlistExists = (showId: string): SQL => sql`
  SELECT EXISTS (SELECT 1 FROM bookings WHERE show_id = ${showId} AND status = 'WAITLISTED') AS waiting`;

/**
 * What an offer pass needs to know about the show: whether the list still takes and serves
 * entries (open: no operator closed it and the show's sales_close_at has not passed), how long
 * an offer holds, and the section ranks by name.
 */
export const waitlistShow = (showId: string, defaultOfferSeconds: number): SQL => sql`
  SELECT sh.waitlist_closed_at IS NULL AND sh.sales_close_at > ${STATEMENT_NOW} AS open,
         coalesce(sh.waitlist_offer_seconds, ${defaultOfferSeconds})::int AS offer_seconds,
         (SELECT coalesce(jsonb_object_agg(name, rank), '{}') FROM show_sections WHERE show_id = sh.id) AS ranks
  FROM shows sh WHERE sh.id = ${showId}`;

/** The show's AVAILABLE seats per section rank, as this transaction sees them. */
export const freeSeatsBySection = (showId: string): SQL => sql`
  SELECT section_rank AS rank, count(*)::int AS free
  FROM seats WHERE show_id = ${showId} AND status = 'AVAILABLE'
  GROUP BY section_rank`;

/**
 * The next entries of the list after `after` that could fit `maxSeats` seats, locked. SKIP
 * LOCKED: an entry locked by someone else is being cancelled (only cancels lock WAITLISTED rows
 * without this list's lock), so it is leaving.
 */
export const nextEntriesForUpdate = (showId: string, maxSeats: number, after: { at: Date; id: string } | null, limit: number): SQL => sql`
  SELECT id, seat_count, requested_section, waitlisted_at
  FROM bookings
  WHERE show_id = ${showId} AND status = 'WAITLISTED' AND seat_count <= ${maxSeats}
    ${after ? sql`AND (waitlisted_at, id) > (${after.at.toISOString()}::timestamptz, ${after.id}::uuid)` : sql``}
  ORDER BY waitlisted_at, id
  LIMIT ${limit}
  FOR UPDATE SKIP LOCKED`;

/**
 * Turns a waiting entry into a hold of the given seats (an offer): the hold runs its full
 * length from this statement, and the booking is priced from the seats, as a claim does.
 */
export const offerSeats = (bookingId: string, seatIds: number[], seatLabels: string[], offerSeconds: number): SQL => sql`
  UPDATE bookings
  SET status = 'HELD', seat_ids = ${sql.param(seatIds)}::int[], seat_labels = ${sql.param(seatLabels)}::text[],
      hold_expires_at = clock.at + make_interval(secs => ${offerSeconds}), updated_at = clock.at,
      total_cents = (SELECT coalesce(sum(price_cents), 0) FROM seats WHERE id = ANY(${sql.param(seatIds)}::int[]))
  FROM (SELECT clock_timestamp() AS at) AS clock
  WHERE id = ${bookingId} AND status = 'WAITLISTED'
  RETURNING id`;

/** The section ranks of the given seats, one row per seat (what an offer took from where). */
export const sectionRanksOf = (seatIds: number[]): SQL => sql`
  SELECT section_rank AS rank FROM seats WHERE id = ANY(${sql.param(seatIds)}::int[])`;

/** An entry's place: 1 + the entries of its show that joined before it and still wait. */
export const positionOf = (showId: string, waitlistedAt: Date, id: string): SQL => sql`
  SELECT 1 + count(*)::int AS position
  FROM bookings
  WHERE show_id = ${showId} AND status = 'WAITLISTED'
    AND (waitlisted_at, id) < (${waitlistedAt.toISOString()}::timestamptz, ${id}::uuid)`;

/** A page of the list, in order, with each entry's position. */
export const waitlistPage = (showId: string, after: { at: Date; id: string } | null, limit: number): SQL => sql`
  SELECT id, customer_email, seat_count, requested_section, waitlisted_at,
         ${after ? sql`(SELECT count(*)::int FROM bookings p WHERE p.show_id = ${showId} AND p.status = 'WAITLISTED' AND (p.waitlisted_at, p.id) <= (${after.at.toISOString()}::timestamptz, ${after.id}::uuid))` : sql`0`}
           + row_number() OVER (ORDER BY waitlisted_at, id)::int AS position
  FROM bookings
  WHERE show_id = ${showId} AND status = 'WAITLISTED'
    ${after ? sql`AND (waitlisted_at, id) > (${after.at.toISOString()}::timestamptz, ${after.id}::uuid)` : sql``}
  ORDER BY waitlisted_at, id
  LIMIT ${limit}`;

/** Closing the list: every entry still waiting fails SOLD_OUT. */
export const failWaitingEntries = (showId: string): SQL => sql`
  UPDATE bookings SET status = 'FAILED', failure_reason = 'SOLD_OUT', updated_at = ${STATEMENT_NOW}
  WHERE show_id = ${showId} AND status = 'WAITLISTED'
  RETURNING id`;

export const markWaitlistClosed = (showId: string): SQL => sql`
  UPDATE shows SET waitlist_closed_at = coalesce(waitlist_closed_at, ${STATEMENT_NOW})
  WHERE id = ${showId}
  RETURNING waitlist_closed_at`;

/**
 * Shows whose list has entries, with whether sales have closed (their entries must fail) and
 * whether seats are free (an offer pass may have been missed: a claim that held seats locked
 * while the pass ran, a crash between two transactions).
 */
export const showsWithWaitingEntries = (): SQL => sql`
  SELECT w.show_id::text AS show_id,
         (sh.sales_close_at <= ${STATEMENT_NOW} OR sh.waitlist_closed_at IS NOT NULL) AS closed,
         EXISTS (SELECT 1 FROM seats s WHERE s.show_id = w.show_id AND s.status = 'AVAILABLE') AS seats_free
  FROM (SELECT DISTINCT show_id FROM bookings WHERE status = 'WAITLISTED') AS w
  JOIN shows sh ON sh.id = w.show_id
  ORDER BY w.show_id`;
