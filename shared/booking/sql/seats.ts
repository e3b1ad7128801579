import { sql, type SQL } from 'drizzle-orm';
import { lapsedHoldsExist } from './holds.js';

/**
 * The seat-claiming statements. Each runs inside the caller's claim transaction; the row locks
 * it takes last until that transaction ends.
 *
 * Locking rules, which together make claims deadlock-free and never falsely "sold out":
 * - best-available claims use FOR UPDATE SKIP LOCKED: a seat another transaction is claiming
 *   is passed over instead of waited on, so concurrent claims spread over different seats;
 * - specific seats are locked with a *blocking* FOR UPDATE in seat-id order: the buyer asked
 *   for exactly these, so the claim must know their real state, and a fixed order cannot
 *   deadlock;
 * - a shortfall is only "sold out" once `claimableSeats` confirms, without SKIP LOCKED, that
 *   the committed state really lacks the seats.
 */

/** `null` section rank means "any section", best first. */
export type SectionFilter = number | null;

const inSection = (rank: SectionFilter) => (rank === null ? sql`` : sql`AND section_rank = ${rank}`);

/** Locks (blocking, in id order) the seats of a show with the given labels; returns id, label, status. */
export const seatsByLabelForUpdate = (showId: string, labels: string[]): SQL => sql`
  SELECT id, label, status
  FROM seats
  WHERE show_id = ${showId} AND label = ANY(${sql.param(labels)}::text[])
  ORDER BY id
  FOR UPDATE`;

/**
 * Locks up to `limit` AVAILABLE seats in seat order (section rank, row, number), skipping seats
 * other transactions hold and the ids in `exclude` (already spoken for in this transaction).
 * Served by the partial index seats_claim_idx.
 */
export const firstAvailableSeatsForUpdate = (showId: string, rank: SectionFilter, limit: number, exclude: number[]): SQL => sql`
  SELECT id, label
  FROM seats
  WHERE show_id = ${showId} AND status = 'AVAILABLE' ${inSection(rank)}
    AND id <> ALL(${sql.param(exclude)}::int[])
  ORDER BY section_rank, row, number
  LIMIT ${limit}
  FOR UPDATE SKIP LOCKED`;

/**
 * The AVAILABLE seats of a show (or one section) in seat order, read without locks. A claim
 * batch reads this once and searches it for adjacent runs in memory: one index scan per batch
 * instead of a gaps-and-islands query per multi-seat request. The list goes stale as other
 * transactions claim seats; `seatsIfFreeForUpdate` re-checks every seat it is asked for.
 */
export const freeSeatsInOrder = (showId: string, rank: SectionFilter): SQL => sql`
  SELECT id, label, section_rank, row, number
  FROM seats
  WHERE show_id = ${showId} AND status = 'AVAILABLE' ${inSection(rank)}
  ORDER BY section_rank, row, number`;

/**
 * Locks those of the given seats that are still AVAILABLE and not being claimed by another
 * transaction (SKIP LOCKED), in id order (which is seat order: seats are created in order).
 */
export const seatsIfFreeForUpdate = (ids: number[]): SQL => sql`
  SELECT id, label
  FROM seats
  WHERE id = ANY(${sql.param(ids)}::int[]) AND status = 'AVAILABLE'
  ORDER BY id
  FOR UPDATE SKIP LOCKED`;

/**
 * What the committed state really offers, read without SKIP LOCKED: seats AVAILABLE (other
 * than `exclude`), and whether lapsed holds could be released now. Seats that other
 * transactions are claiming still count as available here; that is the point.
 */
export const claimableSeats = (showId: string, rank: SectionFilter, exclude: number[]): SQL => sql`
  SELECT
    (SELECT count(*)::int FROM seats
      WHERE show_id = ${showId} AND status = 'AVAILABLE' ${inSection(rank)}
        AND id <> ALL(${sql.param(exclude)}::int[])) AS available,
    ${lapsedHoldsExist(showId)} AS lapsed`;
