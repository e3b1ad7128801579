import { and, desc, eq, sql, type SQL } from 'drizzle-orm';
import type { Database, Executor } from '../db/client.js';
import { bookings, type Booking } from '../db/schema/index.js';
import { pageOf, type Page, type Position } from './page.js';
import type { DecidedStatus } from './statuses.js';

/** Reading bookings back: one by id (status polls, settles), or a page of them (admins). */

const readers = new WeakMap<Database, (id: string) => Promise<Booking | null>>();

/**
 * One booking by id, for the status polls of decided bookings and a settle's answer: a
 * prepared statement built once per database handle, so a read skips drizzle's query building
 * (profiled at about a fifth of a millisecond per call under a burst) and Postgres its planning.
 */
export function bookingReader(db: Database): (id: string) => Promise<Booking | null> {
  let reader = readers.get(db);
  if (!reader) {
    const prepared = db.select().from(bookings).where(eq(bookings.id, sql.placeholder('id'))).prepare('booking_by_id');
    reader = async (id) => (await prepared.execute({ id }))[0] ?? null;
    readers.set(db, reader);
  }
  return reader;
}

/** Decided bookings (Postgres holds no QUEUED one), newest first, for admins looking one up. */
export type BookingSearch = {
  showId?: string;
  email?: string;
  status?: DecidedStatus;
  limit: number;
  after?: Position | null;
};

export async function findBookings(db: Executor, search: BookingSearch): Promise<Page<Booking>> {
  const conditions: SQL[] = [];
  if (search.showId) conditions.push(eq(bookings.showId, search.showId));
  // Emails are stored lowercased at intake, so equality is case-insensitive for callers who lowercase too.
  if (search.email) conditions.push(eq(bookings.customerEmail, search.email));
  if (search.status) conditions.push(eq(bookings.status, search.status));
  if (search.after) {
    conditions.push(sql`(${bookings.acceptedAt}, ${bookings.id}) < (${search.after.at.toISOString()}::timestamptz, ${search.after.id}::uuid)`);
  }
  const rows = await db
    .select()
    .from(bookings)
    .where(conditions.length > 0 ? and(...conditions) : undefined)
    .orderBy(desc(bookings.acceptedAt), desc(bookings.id))
    .limit(search.limit + 1);
  return pageOf(rows, search.limit, (row) => ({ at: row.acceptedAt, id: row.id }));
}
