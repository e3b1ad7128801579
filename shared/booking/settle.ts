import { sql } from 'drizzle-orm';
import type { Database } from '../db/client.js';
import type { Booking } from '../db/schema/index.js';
import { bookingReader } from './find-bookings.js';
import { offerFreedSeats, type Offer, type WaitlistSettings } from './waitlist.js';

/**
 * Settling a booking: confirm a hold (simulated payment), cancel a hold or a place on the
 * waiting list, refund a confirmed booking. Each is one call of a database function that locks
 * the booking row first, then its seats, so it serialises with the expiry sweep and with a
 * second settle of the same booking.
 */

/** `offers`: the waiting list's entries that got the seats this settle freed (usually none). */
export type SettleOutcome =
  | { kind: 'ok'; booking: Booking; offers?: Offer[] }
  /** The booking is not in a state this action accepts; `booking.status` says which. */
  | { kind: 'rejected'; booking: Booking; offers?: Offer[] }
  | { kind: 'not_found' };

type SettleAction = 'confirm' | 'payment_failed' | 'cancel' | 'refund';
type Verdict = 'ok' | 'rejected' | 'not_found';

/** What a settle needs to know to offer seats it frees to the show's waiting list. */
export type SettleSettings = WaitlistSettings;

export async function confirmBooking(db: Database, id: string, paymentSucceeded: boolean, settings: SettleSettings): Promise<SettleOutcome> {
  return settle(db, id, paymentSucceeded ? 'confirm' : 'payment_failed', settings);
}

/** Cancels a hold (its seats are freed) or a place on the waiting list. */
export async function cancelBooking(db: Database, id: string, settings: SettleSettings): Promise<SettleOutcome> {
  return settle(db, id, 'cancel', settings);
}

/** A simulated refund of a CONFIRMED booking: REFUNDED, its seats freed (to the waiting list first). */
export async function refundBooking(db: Database, id: string, settings: SettleSettings): Promise<SettleOutcome> {
  return settle(db, id, 'refund', settings);
}

/** settle_booking's signal that it freed seats of a show whose waiting list has entries. */
const OFFERS_MUST_FOLLOW = 'TRW01';

/**
 * One call to `settle_booking` (drizzle/0007_waiting_list.sql), which locks the booking, then
 * its seats, applies the action and writes its outbox event in a single round trip, so the
 * locks are never held while the API's event loop is busy elsewhere. When the seats it frees
 * have a waiting list to go to, the function refuses (rolling back) and the settle runs again
 * inside a transaction that offers them before it commits (shared/booking/waitlist.ts): rare,
 * and only after a sell-out. The booking is read back after the commit, to answer with the
 * state the settle left.
 */
async function settle(db: Database, id: string, action: SettleAction, settings: SettleSettings): Promise<SettleOutcome> {
  let verdict: Verdict;
  let offers: Offer[] = [];
  try {
    const result = await db.execute<{ verdict: Verdict }>(sql`SELECT settle_booking(${id}, ${action}) AS verdict`);
    verdict = result.rows[0]!.verdict;
  } catch (error) {
    if (!isOffersMustFollow(error)) throw error;
    verdict = await db.transaction(async (tx) => {
      const result = await tx.execute<{ verdict: Verdict; show_id: string | null }>(
        sql`SELECT settle_booking(${id}, ${action}, true) AS verdict, (SELECT show_id FROM bookings WHERE id = ${id}) AS show_id`,
      );
      const { verdict: settled, show_id: showId } = result.rows[0]!;
      if (showId) offers = await offerFreedSeats(tx, showId, settings);
      return settled;
    });
  }
  if (verdict === 'not_found') return { kind: 'not_found' };
  const booking = await bookingReader(db)(id);
  return booking ? { kind: verdict, booking, offers } : { kind: 'not_found' };
}

function isOffersMustFollow(error: unknown): boolean {
  for (let cause = error; cause instanceof Error; cause = cause.cause) {
    if ((cause as { code?: unknown }).code === OFFERS_MUST_FOLLOW) return true;
  }
  return false;
}
