import { sql } from 'drizzle-orm';
import type { Executor } from '../db/client.js';
import { STATEMENT_NOW } from '../db/clock.js';

/**
 * The seat-claiming SQL. Every function here runs inside the caller's transaction; the row
 * locks it takes last until that transaction ends.
 *
 * Locking rules, which together make claims deadlock-free and never falsely "sold out":
 * - best-available claims use FOR UPDATE SKIP LOCKED: a seat another transaction is claiming
 *   is passed over instead of waited on, so concurrent claims spread over different seats;
 * - specific seats are locked with a *blocking* FOR UPDATE in seat-id order: the buyer asked
 *   for exactly these, so we must know their real state, and a fixed order cannot deadlock;
 * - a shortfall is only "sold out" once `countClaimable` confirms, without SKIP LOCKED, that
 *   the committed state really lacks the seats (see decide.ts).
 */

export type ClaimedSeat = { id: number; label: string };
export type LockedSeat = ClaimedSeat & { status: string };

/** `null` section rank means "any section", best first. */
export type SectionFilter = number | null;

const sectionClause = (rank: SectionFilter) => (rank === null ? sql`` : sql`AND section_rank = ${rank}`);

/** Locks (blocking, in id order) the seats of a show with the given labels and returns their state. */
export async function lockSeatsByLabel(tx: Executor, showId: string, labels: string[]): Promise<LockedSeat[]> {
  if (labels.length === 0) return [];
  const result = await tx.execute<LockedSeat>(sql`
    SELECT id, label, status
    FROM seats
    WHERE show_id = ${showId} AND label = ANY(${sql.param(labels)}::text[])
    ORDER BY id
    FOR UPDATE`);
  return result.rows;
}

/**
 * Locks up to `limit` AVAILABLE seats in seat order (section rank, row, number), skipping seats
 * other transactions hold and the ids in `exclude` (already spoken for in this transaction).
 * Served by the partial index seats_claim_idx.
 */
export async function lockFirstAvailable(
  tx: Executor,
  showId: string,
  rank: SectionFilter,
  limit: number,
  exclude: number[],
): Promise<ClaimedSeat[]> {
  const result = await tx.execute<ClaimedSeat>(sql`
    SELECT id, label
    FROM seats
    WHERE show_id = ${showId} AND status = 'AVAILABLE' ${sectionClause(rank)}
      AND id <> ALL(${sql.param(exclude)}::int[])
    ORDER BY section_rank, row, number
    LIMIT ${limit}
    FOR UPDATE SKIP LOCKED`);
  return result.rows;
}

export type FreeSeat = ClaimedSeat & { section_rank: number; row: number; number: number };

/**
 * The AVAILABLE seats of a show (or one section) in seat order, read without locks. A claim
 * batch reads this once and searches it for adjacent runs in memory: one index scan per batch
 * instead of a gaps-and-islands query per multi-seat request. The list goes stale as other
 * transactions claim seats; `lockSeatsIfFree` re-checks every seat it is asked for.
 */
export async function listFreeSeats(tx: Executor, showId: string, rank: SectionFilter): Promise<FreeSeat[]> {
  const result = await tx.execute<FreeSeat>(sql`
    SELECT id, label, section_rank, row, number
    FROM seats
    WHERE show_id = ${showId} AND status = 'AVAILABLE' ${sectionClause(rank)}
    ORDER BY section_rank, row, number`);
  return result.rows;
}

/**
 * Locks those of the given seats that are still AVAILABLE and not being claimed by another
 * transaction (SKIP LOCKED), in id order (which is seat order: seats are created in order).
 */
export async function lockSeatsIfFree(tx: Executor, ids: number[]): Promise<ClaimedSeat[]> {
  const result = await tx.execute<ClaimedSeat>(sql`
    SELECT id, label
    FROM seats
    WHERE id = ANY(${sql.param(ids)}::int[]) AND status = 'AVAILABLE'
    ORDER BY id
    FOR UPDATE SKIP LOCKED`);
  return result.rows;
}

/** The first `count` adjacent seats in one row of an ordered free list, skipping excluded ones. */
export function firstAdjacentRun(free: FreeSeat[], count: number, excluded: (id: number) => boolean): FreeSeat[] | null {
  let run: FreeSeat[] = [];
  for (const seat of free) {
    if (excluded(seat.id)) {
      run = [];
      continue;
    }
    const last = run[run.length - 1];
    const adjacent = last && last.section_rank === seat.section_rank && last.row === seat.row && last.number + 1 === seat.number;
    run = adjacent ? [...run, seat] : [seat];
    if (run.length === count) return run;
  }
  return null;
}

/**
 * What the committed state really offers, read without SKIP LOCKED: seats AVAILABLE (other
 * than `exclude`), and whether lapsed-but-unswept holds exist that could be released now.
 * Seats that other transactions are claiming still count as available here; that is the point.
 */
export async function countClaimable(
  tx: Executor,
  showId: string,
  rank: SectionFilter,
  exclude: number[],
): Promise<{ available: number; lapsedHolds: boolean }> {
  const result = await tx.execute<{ available: number; lapsed: boolean }>(sql`
    SELECT
      (SELECT count(*)::int FROM seats
        WHERE show_id = ${showId} AND status = 'AVAILABLE' ${sectionClause(rank)}
          AND id <> ALL(${sql.param(exclude)}::int[])) AS available,
      EXISTS (SELECT 1 FROM bookings
        WHERE status = 'HELD' AND hold_expires_at <= ${STATEMENT_NOW} AND show_id = ${showId}) AS lapsed`);
  const row = result.rows[0];
  return { available: row?.available ?? 0, lapsedHolds: row?.lapsed ?? false };
}
