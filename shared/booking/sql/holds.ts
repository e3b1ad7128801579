import { sql, type SQL } from 'drizzle-orm';
import { STATEMENT_NOW } from '../../db/clock.js';

/**
 * Lapsed holds: HELD bookings whose hold has run out but that no sweep has released yet. Their
 * seats are for sale again (listings already count them available), so every question a claim
 * asks about supply must see them. They are asked about one way, here.
 */

/**
 * How many lapsed holds a claim releases at once before deciding. A claim does this while it
 * holds seat and customer locks, so it is bounded like one batch of the sweep: a claim that
 * finds more lapsed holds than this answers CONTENDED for the rest and the next round (or the
 * sweep) releases them, which never turns into a false SOLD_OUT.
 */
export const CLAIM_RELEASE_LIMIT = 1_000;

/** The scheduled sweep's batch: each batch is its own short transaction. */
export const SWEEP_BATCH_SIZE = 1_000;

/** The one definition of a lapsed hold, on the bookings table. */
const isLapsed = sql`status = 'HELD' AND hold_expires_at <= ${STATEMENT_NOW}`;

/**
 * True when the show has at least one lapsed hold. Served by bookings_show_hold_expiry_idx (the
 * clock is one value per statement, so it serves as an index condition).
 */
export const lapsedHoldsExist = (showId: string): SQL => sql`EXISTS (
  SELECT 1 FROM bookings
  WHERE show_id = ${showId} AND ${isLapsed})`;

/**
 * Moves up to `limit` lapsed holds (of every show, one show, or only those on the named seats
 * of one show) to EXPIRED and frees their seats, in one statement. Each booking is taken FOR
 * UPDATE SKIP LOCKED and must still be HELD, so concurrent sweeps and claims release each hold
 * exactly once; oldest first, served by bookings_hold_expiry_idx. Returns the ids it expired, for
 * their outbox events.
 */
export type ReleaseScope = { showId?: string | undefined; seatLabels?: string[] | undefined; limit: number };

export const releaseLapsed = ({ showId, seatLabels, limit }: ReleaseScope): SQL => sql`
  WITH lapsed AS (
    SELECT id FROM bookings
    WHERE ${isLapsed} ${showId ? sql`AND show_id = ${showId}` : sql``}
      ${showId && seatLabels ? sql`AND id IN (SELECT booking_id FROM seats WHERE show_id = ${showId} AND label = ANY(${sql.param(seatLabels)}::text[]) AND status = 'HELD')` : sql``}
    ORDER BY hold_expires_at
    LIMIT ${limit}
    FOR UPDATE SKIP LOCKED
  ), expired AS (
    UPDATE bookings b SET status = 'EXPIRED', updated_at = ${STATEMENT_NOW}
    FROM lapsed WHERE b.id = lapsed.id
    RETURNING b.id, b.show_id, b.seat_labels
  ), released AS (
    UPDATE seats s SET status = 'AVAILABLE', booking_id = NULL, hold_expires_at = NULL
    FROM expired WHERE s.booking_id = expired.id AND s.status = 'HELD'
    RETURNING s.id
  )
  SELECT (SELECT count(*)::int FROM expired) AS bookings, (SELECT count(*)::int FROM released) AS seats,
    -- Which holds, for live updates once the batch commits (shared/live/changes.ts).
    (SELECT coalesce(json_agg(json_build_object('id', id, 'showId', show_id, 'seats', seat_labels)), '[]'::json) FROM expired) AS holds`;
