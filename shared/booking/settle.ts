import { eq, sql } from 'drizzle-orm';
import type { Database, Executor } from '../db/client.js';
import { bookings, type Booking } from '../db/schema/index.js';

/**
 * Settling a hold: confirm (simulated payment) or cancel. Each is one short transaction that
 * locks the booking row first, then its seats, so it serialises with the expiry sweep and with
 * a second confirm of the same booking.
 */

export type SettleOutcome =
  | { kind: 'ok'; booking: Booking }
  /** The booking is not in a state this action accepts; `booking.status` says which. */
  | { kind: 'rejected'; booking: Booking }
  | { kind: 'not_found' };

export async function getBooking(db: Executor, id: string): Promise<Booking | null> {
  const [booking] = await db.select().from(bookings).where(eq(bookings.id, id));
  return booking ?? null;
}

/**
 * `getBooking` for the hot read path (status polls of decided bookings): a prepared statement
 * built once per database handle, so a poll skips drizzle's query building and Postgres its
 * planning.
 */
export function bookingReader(db: Database): (id: string) => Promise<Booking | null> {
  const prepared = db.select().from(bookings).where(eq(bookings.id, sql.placeholder('id'))).prepare('booking_by_id');
  return async (id) => (await prepared.execute({ id }))[0] ?? null;
}

async function lockBooking(tx: Executor, id: string) {
  const rows = await tx.execute<{ id: string; status: string; lapsed: boolean }>(sql`
    SELECT id, status, (status = 'HELD' AND hold_expires_at <= now()) AS lapsed
    FROM bookings WHERE id = ${id} FOR UPDATE`);
  return rows.rows[0] ?? null;
}

async function releaseSeats(tx: Executor, bookingId: string): Promise<void> {
  await tx.execute(sql`
    UPDATE seats SET status = 'AVAILABLE', booking_id = NULL, hold_expires_at = NULL
    WHERE booking_id = ${bookingId} AND status = 'HELD'`);
}

/** A lapsed hold can never be confirmed or cancelled: it is expired on the spot instead. */
async function expireNow(tx: Executor, id: string): Promise<void> {
  await tx.execute(sql`UPDATE bookings SET status = 'EXPIRED', updated_at = now() WHERE id = ${id}`);
  await releaseSeats(tx, id);
}

export async function confirmBooking(db: Database, id: string, paymentSucceeded: boolean): Promise<SettleOutcome> {
  return settle(db, id, async (tx, current) => {
    if (current.status === 'CONFIRMED') return 'ok'; // confirming twice answers the same
    if (current.status !== 'HELD') return 'rejected';
    if (paymentSucceeded) {
      const booked = await tx.execute(sql`
        UPDATE seats SET status = 'BOOKED', hold_expires_at = NULL
        WHERE booking_id = ${id} AND status = 'HELD'`);
      await tx.execute(sql`
        UPDATE bookings SET status = 'CONFIRMED', confirmed_at = now(), updated_at = now()
        WHERE id = ${id} AND cardinality(seat_ids) = ${booked.rowCount ?? 0}`);
    } else {
      await releaseSeats(tx, id);
      await tx.execute(sql`
        UPDATE bookings SET status = 'FAILED', failure_reason = 'PAYMENT_FAILED', updated_at = now()
        WHERE id = ${id}`);
    }
    return 'ok';
  });
}

export async function cancelBooking(db: Database, id: string): Promise<SettleOutcome> {
  return settle(db, id, async (tx, current) => {
    if (current.status !== 'HELD') return 'rejected';
    await releaseSeats(tx, id);
    await tx.execute(sql`UPDATE bookings SET status = 'CANCELLED', updated_at = now() WHERE id = ${id}`);
    return 'ok';
  });
}

async function settle(
  db: Database,
  id: string,
  action: (tx: Executor, current: { status: string }) => Promise<'ok' | 'rejected'>,
): Promise<SettleOutcome> {
  return db.transaction(async (tx) => {
    const current = await lockBooking(tx, id);
    if (!current) return { kind: 'not_found' as const };
    let verdict: 'ok' | 'rejected';
    if (current.lapsed) {
      await expireNow(tx, id);
      verdict = 'rejected';
    } else {
      verdict = await action(tx, current);
    }
    const booking = (await getBooking(tx, id))!;
    if (verdict === 'ok' && booking.status === 'HELD') {
      // The seat update did not match the booking (only possible if data were corrupted):
      // refuse rather than confirm a booking without all of its seats.
      throw new Error(`booking ${id} could not be settled consistently`);
    }
    return { kind: verdict, booking };
  });
}
