import type { Executor } from '../db/client.js';
import { recordBookingEvents } from '../webhooks/outbox.js';
import { releaseLapsed, SWEEP_BATCH_SIZE, type ReleaseScope } from './sql/holds.js';
import { offerFreedSeats, type Offer, type WaitlistSettings } from './waitlist.js';

export type ExpiryResult = { bookings: number; seats: number };

/** A hold a release moved to EXPIRED: its show and the seats it gave back. */
export type ReleasedHold = { id: string; showId: string; seats: string[] };

/**
 * Moves lapsed holds to EXPIRED and makes their seats AVAILABLE again (sql/holds.ts).
 *
 * Safe to run from any number of places at once (the scheduled sweep, a claim that found only
 * lapsed holds, an overlapping sweep): each hold is released exactly once. Each expired booking's
 * `booking.expired` event is written to the outbox by the same transaction.
 */
export async function releaseLapsedHolds(tx: Executor, scope: ReleaseScope): Promise<ExpiryResult & { holds: ReleasedHold[] }> {
  const result = await tx.execute<ExpiryResult & { holds: ReleasedHold[] }>(releaseLapsed(scope));
  const released = result.rows[0] ?? { bookings: 0, seats: 0, holds: [] };
  await recordBookingEvents(tx, released.holds.map((hold) => ({ type: 'booking.expired', bookingId: hold.id })));
  return released;
}

/**
 * Sweeps every lapsed hold, in batches, each batch its own short transaction. The seats a batch
 * frees are offered to their shows' waiting lists in the same transaction
 * (shared/booking/waitlist.ts; shows in key order, the order their lists' locks are taken in):
 * a lapsed offer passes to the next entry. `onReleased` hears of each batch's holds, and
 * `onOffered` of the offers it made, once that batch has committed (live updates publish them).
 */
export async function sweepLapsedHolds(
  db: { transaction: <T>(fn: (tx: Executor) => Promise<T>) => Promise<T> },
  waitlist: WaitlistSettings,
  batchSize = SWEEP_BATCH_SIZE,
  onReleased?: (holds: ReleasedHold[]) => void,
  onOffered?: (offers: Offer[]) => void,
): Promise<ExpiryResult> {
  const total: ExpiryResult = { bookings: 0, seats: 0 };
  for (;;) {
    const batch = await db.transaction(async (tx) => {
      const released = await releaseLapsedHolds(tx, { limit: batchSize });
      const offers: Offer[] = [];
      for (const showId of [...new Set(released.holds.map((hold) => hold.showId))].sort()) {
        offers.push(...(await offerFreedSeats(tx, showId, waitlist)));
      }
      return { ...released, offers };
    });
    if (batch.offers.length > 0) onOffered?.(batch.offers);
    if (batch.holds.length > 0) onReleased?.(batch.holds);
    total.bookings += batch.bookings;
    total.seats += batch.seats;
    if (batch.bookings < batchSize) return total;
  }
}

