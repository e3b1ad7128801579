import { sql } from 'drizzle-orm';
import type { Database, Executor } from '../db/client.js';

/**
 * Deleting a show an admin created by mistake: only while nobody holds or owns a seat of it.
 * Its seats, sections and decided bookings (FAILED, EXPIRED, CANCELLED) go with it. Whether
 * requests for it still wait in the queue is the caller's check (the queue is not Postgres).
 */

export type LiveBookings = { held: number; confirmed: number };

export type DeleteShowOutcome =
  | { kind: 'deleted'; seats: number; bookings: number }
  | { kind: 'not_found' }
  | ({ kind: 'live' } & LiveBookings);

/** A hold counts while it has not lapsed (a lapsed one is the sweep's, its seats already for sale). */
async function liveBookings(db: Executor, showId: string): Promise<LiveBookings> {
  const result = await db.execute<LiveBookings>(sql`
    SELECT count(*) FILTER (WHERE status = 'HELD' AND hold_expires_at > now())::int AS held,
           count(*) FILTER (WHERE status = 'CONFIRMED')::int AS confirmed
    FROM bookings WHERE show_id = ${showId}`);
  return result.rows[0] ?? { held: 0, confirmed: 0 };
}

export async function deleteShow(db: Database, showId: string): Promise<DeleteShowOutcome> {
  const exists = await db.execute(sql`SELECT 1 FROM shows WHERE id = ${showId}`);
  if (exists.rows.length === 0) return { kind: 'not_found' };
  // Refuse cheaply, before locking anything a sale needs.
  const before = await liveBookings(db, showId);
  if (before.held + before.confirmed > 0) return { kind: 'live', ...before };

  return db.transaction(async (tx) => {
    // Seats first, in id order, as claims lock them (specific seats block in id order): the
    // same order cannot deadlock. Claims then find no seat; a booking a claim already wrote
    // holds a key-share lock on the show, which the FOR UPDATE below waits for, and the
    // re-count sees it.
    await tx.execute(sql`SELECT id FROM seats WHERE show_id = ${showId} ORDER BY id FOR UPDATE`);
    const locked = await tx.execute(sql`SELECT 1 FROM shows WHERE id = ${showId} FOR UPDATE`);
    if (locked.rows.length === 0) return { kind: 'not_found' as const };
    const live = await liveBookings(tx, showId);
    if (live.held + live.confirmed > 0) return { kind: 'live' as const, ...live };
    // Seats point at bookings (lapsed holds not yet swept), so they go first; sections cascade.
    const seats = await tx.execute(sql`DELETE FROM seats WHERE show_id = ${showId}`);
    const bookings = await tx.execute(sql`DELETE FROM bookings WHERE show_id = ${showId}`);
    await tx.execute(sql`DELETE FROM shows WHERE id = ${showId}`);
    return { kind: 'deleted' as const, seats: seats.rowCount ?? 0, bookings: bookings.rowCount ?? 0 };
  });
}
