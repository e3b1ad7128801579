import type { Executor } from '../db/client.js';
import { recordBookingEvents } from '../webhooks/outbox.js';
import { releaseLapsed, SWEEP_BATCH_SIZE, type ReleaseScope } from './sql/holds.js';
import { offerFreedSeats, type WaitlistSettings } from './waitlist.js';

export type ExpiryResult = { bookings: number; seats: number };

/**
 * Moves lapsed holds to EXPIRED and makes their seats AVAILABLE again (sql/holds.ts).
 *
 * Safe to run from any number of places at once (the scheduled sweep, a claim that found only
 * lapsed holds, an overlapping sweep): each hold is released exactly once. Each expired booking's
 * `booking.expired` event is written to the outbox by the same transaction.
 */
export async function releaseLapsedHolds(tx: Executor, scope: ReleaseScope): Promise<ExpiryResult> {
  const { bookings, seats } = await releaseLapsedHoldsOf(tx, scope);
  return { bookings, seats };
}

/** The release, its outbox events, and the shows that got seats back (for their waiting lists). */
async function releaseLapsedHoldsOf(tx: Executor, scope: ReleaseScope): Promise<ExpiryResult & { shows: string[] }> {
  const result = await tx.execute<ExpiryResult & { booking_ids: string[]; shows: string[] }>(releaseLapsed(scope));
  const { bookings = 0, seats = 0, booking_ids: expired = [], shows = [] } = result.rows[0] ?? {};
  await recordBookingEvents(tx, expired.map((bookingId) => ({ type: 'booking.expired', bookingId })));
  return { bookings, seats, shows };
}

/**
 * Sweeps every lapsed hold, in batches, each batch its own short transaction. The seats a batch
 * frees are offered to their shows' waiting lists in the same transaction
 * (shared/booking/waitlist.ts): a lapsed offer passes to the next entry.
 */
export async function sweepLapsedHolds(
  db: { transaction: <T>(fn: (tx: Executor) => Promise<T>) => Promise<T> },
  waitlist: WaitlistSettings,
  batchSize = SWEEP_BATCH_SIZE,
): Promise<ExpiryResult> {
  const total: ExpiryResult = { bookings: 0, seats: 0 };
  for (;;) {
    const batch = await db.transaction(async (tx) => {
      const released = await releaseLapsedHoldsOf(tx, { limit: batchSize });
      for (const showId of released.shows) await offerFreedSeats(tx, showId, waitlist);
      return released;
    });
    total.bookings += batch.bookings;
    total.seats += batch.seats;
    if (batch.bookings < batchSize) return total;
  }
}

