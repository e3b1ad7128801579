import { sql } from 'drizzle-orm';
import type { Database } from '../db/client.js';
import type { Booking } from '../db/schema/index.js';
import { getBooking } from './find-bookings.js';

/**
 * Settling a hold: confirm (simulated payment) or cancel. Each is one call of a database
 * function that locks the booking row first, then its seats, so it serialises with the expiry
 * sweep and with a second confirm of the same booking.
 */

export type SettleOutcome =
  | { kind: 'ok'; booking: Booking }
  /** The booking is not in a state this action accepts; `booking.status` says which. */
  | { kind: 'rejected'; booking: Booking }
  | { kind: 'not_found' };

type SettleAction = 'confirm' | 'payment_failed' | 'cancel';

export async function confirmBooking(db: Database, id: string, paymentSucceeded: boolean): Promise<SettleOutcome> {
  return settle(db, id, paymentSucceeded ? 'confirm' : 'payment_failed');
}

export async function cancelBooking(db: Database, id: string): Promise<SettleOutcome> {
  return settle(db, id, 'cancel');
}

/**
 * One call to `settle_booking` (drizzle/0003_settle_booking.sql, last replaced by
 * 0009_record_booking_events.sql), which locks the booking, then its seats, applies the action
 * and writes its outbox event in a single round trip, so the locks are never held while
 * the API's event loop is busy elsewhere. The booking is read back after the commit, to answer
 * with the state the settle left.
 */
async function settle(db: Database, id: string, action: SettleAction): Promise<SettleOutcome> {
  const result = await db.execute<{ verdict: 'ok' | 'rejected' | 'not_found' }>(sql`SELECT settle_booking(${id}, ${action}) AS verdict`);
  const verdict = result.rows[0]!.verdict;
  if (verdict === 'not_found') return { kind: 'not_found' };
  const booking = await getBooking(db, id);
  return booking ? { kind: verdict, booking } : { kind: 'not_found' };
}
