import { sql, type SQL } from 'drizzle-orm';
import type { Executor } from '../db/client.js';
import { executePrepared } from '../db/prepared.js';
import type { BookingEventType } from './events.js';

/**
 * Whether a webhook subscribes to any of these event types: the test record_booking_events
 * makes before it writes anything. A statement that writes bookings without calling it (the
 * sold-out batch of shared/booking/sql/decisions.ts) asks this first.
 */
export const eventsListened = (types: readonly BookingEventType[]): SQL =>
  sql`EXISTS (SELECT 1 FROM webhooks w WHERE w.events && ${sql.param([...types])}::text[])`;

/** Something that happened to a booking, for the webhooks that subscribe to its type. */
export type BookingEvent = { type: BookingEventType; bookingId: string };

/**
 * Writes booking events to the outbox inside the caller's transaction (so an event exists
 * exactly when its change commits), one INSERT for the whole batch: the SQL function
 * record_booking_events (drizzle/0014_record_events_early_exit.sql), which settle_booking calls too. Call
 * it after the change: each event's `data` is the booking row as the transaction left it. Event
 * types no webhook subscribes to are not written. Only the event rows: their deliveries are
 * written by the relay, off the booking path (shared/webhooks/relay.ts). Returns the number written.
 */
export async function recordBookingEvents(tx: Executor, events: readonly BookingEvent[]): Promise<number> {
  if (events.length === 0) return 0;
  // Named (shared/db/prepared.ts): a function call, whose plan no table's size can change.
  const result = await executePrepared<{ written: number }>(
    tx,
    sql`SELECT record_booking_events(
          ${sql.param(events.map((event) => event.type))}::text[],
          ${sql.param(events.map((event) => event.bookingId))}::uuid[]) AS written`,
  );
  return result.rows[0]?.written ?? 0;
}
