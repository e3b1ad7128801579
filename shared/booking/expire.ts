import type { Executor } from '../db/client.js';
import { releaseLapsed, SWEEP_BATCH_SIZE, type ReleaseScope } from './sql/holds.js';

export type ExpiryResult = { bookings: number; seats: number };

/**
 * Moves lapsed holds to EXPIRED and makes their seats AVAILABLE again (sql/holds.ts).
 *
 * Safe to run from any number of places at once (the scheduled sweep, a claim that found only
 * lapsed holds, an overlapping sweep): each hold is released exactly once.
 */
export async function releaseLapsedHolds(tx: Executor, scope: ReleaseScope): Promise<ExpiryResult> {
  const result = await tx.execute<ExpiryResult>(releaseLapsed(scope));
  return result.rows[0] ?? { bookings: 0, seats: 0 };
}

/** Sweeps every lapsed hold, in batches, each batch its own short transaction. */
export async function sweepLapsedHolds(
  db: { transaction: <T>(fn: (tx: Executor) => Promise<T>) => Promise<T> },
  batchSize = SWEEP_BATCH_SIZE,
): Promise<ExpiryResult> {
  const total: ExpiryResult = { bookings: 0, seats: 0 };
  for (;;) {
    const batch = await db.transaction((tx) => releaseLapsedHolds(tx, { limit: batchSize }));
    total.bookings += batch.bookings;
    total.seats += batch.seats;
    if (batch.bookings < batchSize) return total;
  }
}

