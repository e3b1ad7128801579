import { sql } from 'drizzle-orm';
import type { Database } from '../db/client.js';
import { STATEMENT_NOW } from '../db/clock.js';
import type { BookingJob } from '../queue/catalog.js';
import type { RequestIndex } from '../queue/request-index.js';
import { recordBookingEvents } from '../webhooks/outbox.js';

/**
 * Leaving the line: a queued request (waiting room or in line) cancelled by its holder becomes
 * CANCELLED at once, with no seats, and is never decided; the requests behind it in its show's
 * held line move up.
 *
 * Postgres first: a CANCELLED row under the request's id, written only if no decision is there
 * (ON CONFLICT DO NOTHING). From then on every worker that meets the request, in whatever batch
 * job, finds it decided already (decideBookings reads the rows of its ids first, and a worker
 * racing this insert redoes its transaction on ConcurrentDecisionError), so it can never take
 * seats. Then the line lets it go, which frees its place and turns polls to Postgres. Killed
 * between the two, the row alone is enough: a release of it decides nothing. The row's
 * `booking.cancelled` event is written to the outbox in the same transaction.
 */

export type LeaveOutcome = { kind: 'left' } | { kind: 'decided' };

export async function leaveLine(db: Database, index: RequestIndex, request: BookingJob): Promise<LeaveOutcome> {
  const inserted = await db.transaction(async (tx) => {
    const row = await tx.execute(sql`
      INSERT INTO bookings (id, show_id, customer_email, seat_count, requested_section, requested_seats, status,
                            idempotency_key, accepted_at, decided_at)
      VALUES (${request.id}, ${request.show_id}, ${request.customer_email}, ${request.seat_count}, ${request.section},
              ${request.seats ? sql`${sql.param(request.seats)}::text[]` : sql`NULL`}, 'CANCELLED',
              ${request.idempotency_key}, ${request.accepted_at}, ${STATEMENT_NOW})
      ON CONFLICT (id) DO NOTHING`);
    // The webhook event is written with the row it describes (the outbox: shared/webhooks/outbox.ts).
    if (row.rowCount === 1) await recordBookingEvents(tx, [{ type: 'booking.cancelled', bookingId: request.id }]);
    return row.rowCount === 1;
  });
  // Decided meanwhile (a worker got there first): the caller settles that decision instead.
  if (!inserted) return { kind: 'decided' };
  await index.line.leave(request.show_id, request.id, index.keyOf(request.id));
  return { kind: 'left' };
}
