import { sql } from 'drizzle-orm';
import type { Executor } from '../db/client.js';
import { STATEMENT_NOW } from '../db/clock.js';

export type ExpiryResult = { bookings: number; seats: number };

/**
 * Moves lapsed holds to EXPIRED and makes their seats AVAILABLE again, in one statement.
 *
 * Safe to run from any number of places at once (the scheduled sweep, a claim that found only
 * lapsed holds, an overlapping sweep): each booking is taken with FOR UPDATE SKIP LOCKED and
 * must still be HELD, so a hold is released exactly once. Served by bookings_hold_expiry_idx.
 */
export async function releaseLapsedHolds(
  tx: Executor,
  options: { showId?: string; limit: number },
): Promise<ExpiryResult> {
  const showFilter = options.showId ? sql`AND show_id = ${options.showId}` : sql``;
  const result = await tx.execute<{ bookings: number; seats: number }>(sql`
    WITH lapsed AS (
      SELECT id FROM bookings
      WHERE status = 'HELD' AND hold_expires_at <= ${STATEMENT_NOW} ${showFilter}
      ORDER BY hold_expires_at
      LIMIT ${options.limit}
      FOR UPDATE SKIP LOCKED
    ), expired AS (
      UPDATE bookings b SET status = 'EXPIRED', updated_at = ${STATEMENT_NOW}
      FROM lapsed WHERE b.id = lapsed.id
      RETURNING b.id
    ), released AS (
      UPDATE seats s SET status = 'AVAILABLE', booking_id = NULL, hold_expires_at = NULL
      FROM expired WHERE s.booking_id = expired.id AND s.status = 'HELD'
      RETURNING s.id
    )
    SELECT (SELECT count(*)::int FROM expired) AS bookings, (SELECT count(*)::int FROM released) AS seats`);
  return result.rows[0] ?? { bookings: 0, seats: 0 };
}

/** Sweeps every lapsed hold, in batches, each batch its own short transaction. */
export async function sweepLapsedHolds(
  db: { transaction: <T>(fn: (tx: Executor) => Promise<T>) => Promise<T> },
  batchSize = 1_000,
): Promise<ExpiryResult> {
  const total: ExpiryResult = { bookings: 0, seats: 0 };
  for (;;) {
    const batch = await db.transaction((tx) => releaseLapsedHolds(tx, { limit: batchSize }));
    total.bookings += batch.bookings;
    total.seats += batch.seats;
    if (batch.bookings < batchSize) return total;
  }
}
