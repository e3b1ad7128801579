import { sql } from 'drizzle-orm';
import type { Executor } from '../db/client.js';

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

type Run = { section_rank: number; row: number; first: number };

/**
 * How many runs a claim tries before settling for scattered seats. The search cannot see row
 * locks, so under a burst the best runs it finds are often being claimed by other workers'
 * transactions (each may lock one run per request of its batch); with only a few tries a group
 * would be split across rows while whole runs were free further back. A failed try costs one
 * index probe.
 */
const RUN_CANDIDATES = 20;

/**
 * Finds `count` adjacent AVAILABLE seats in one row and locks them, trying the best runs in
 * seat order. Returns null when no run could be locked whole.
 *
 * The search itself does not lock (a gaps-and-islands scan over the free seats); only the
 * chosen run is locked, with SKIP LOCKED, and re-checked, so a run taken meanwhile is skipped.
 */
export async function lockAdjacentRun(
  tx: Executor,
  showId: string,
  rank: SectionFilter,
  count: number,
  exclude: number[],
): Promise<ClaimedSeat[] | null> {
  const runs = await tx.execute<Run>(sql`
    WITH free AS (
      SELECT section_rank, row, number,
             number - row_number() OVER (PARTITION BY section_rank, row ORDER BY number) AS island
      FROM seats
      WHERE show_id = ${showId} AND status = 'AVAILABLE' ${sectionClause(rank)}
        AND id <> ALL(${sql.param(exclude)}::int[])
    )
    SELECT section_rank, row, min(number) AS first
    FROM free
    GROUP BY section_rank, row, island
    HAVING count(*) >= ${count}
    ORDER BY section_rank, row, first
    LIMIT ${RUN_CANDIDATES}`);
  for (const run of runs.rows) {
    const locked = await tx.execute<ClaimedSeat>(sql`
      SELECT id, label
      FROM seats
      WHERE show_id = ${showId} AND section_rank = ${run.section_rank} AND row = ${run.row}
        AND number BETWEEN ${run.first} AND ${run.first + count - 1}
        AND status = 'AVAILABLE'
      ORDER BY number
      FOR UPDATE SKIP LOCKED`);
    if (locked.rows.length === count) return locked.rows;
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
        WHERE status = 'HELD' AND hold_expires_at <= now() AND show_id = ${showId}) AS lapsed`);
  const row = result.rows[0];
  return { available: row?.available ?? 0, lapsedHolds: row?.lapsed ?? false };
}
