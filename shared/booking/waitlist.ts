import type { Database, Executor } from '../db/client.js';
import { recordBookingEvents } from '../webhooks/outbox.js';
import { Claimer, type SectionFilter } from './allocate.js';
import { pageOf, type Page, type Position } from './page.js';
import { holdSeats } from './sql/decisions.js';
import {
  failWaitingEntries,
  freeSeatsBySection,
  lockWaitlist,
  markWaitlistClosed,
  nextEntriesForUpdate,
  offerSeats,
  positionOf,
  sectionRanksOf,
  showsWithWaitingEntries,
  waitlistExists,
  waitlistPage,
  waitlistShow,
} from './sql/waitlist.js';

/**
 * The waiting list of a sold-out show: requests that asked for it (`waitlist: true`) and would
 * have failed SOLD_OUT wait as WAITLISTED bookings, in the order they joined. Seats freed later
 * (a lapsed hold or offer, a cancel, a declined payment, a refund) are offered to the list in
 * the transaction that frees them: the next entry that fits becomes HELD for the show's offer
 * time, and is confirmed or cancelled like any hold.
 *
 * The rule when the first entry wants more seats than are free: it keeps its place and the
 * seats go to the next entries in order that fit them ("first fit"). No entry is ever passed
 * over while the free seats could serve it, and an entry passed over is first in line for the
 * next seats that fit it; leaving the seats unsold until enough are free for the first entry
 * would keep seats empty while people who want exactly them wait. A new request never takes a
 * freed seat ahead of a fitting entry: claims on a show with a list serve the list first
 * (decide.ts), under the list's lock.
 *
 * Every transaction that frees seats of a show, joins its list or offers to it takes the list's
 * lock (sql/waitlist.ts lockWaitlist), so a freeing and a joining transaction never miss each
 * other. The scheduled sweep runs a pass for every show with entries and free seats too, which
 * catches what a pass could not serve at once (seats locked by a claim at that moment).
 */

export type WaitlistSettings = { offerSeconds: number };

/** An offer made: the booking now HELD, with these seats. */
export type Offer = { bookingId: string; showId: string; seats: string[] };

/** How many entries an offer pass locks and reads at a time. */
const ENTRY_PAGE = 200;

export async function hasWaitingEntries(tx: Executor, showId: string): Promise<boolean> {
  return (await tx.execute<{ waiting: boolean }>(waitlistExists(showId))).rows[0]?.waiting ?? false;
}

/** Takes the show's waiting-list lock until this transaction ends. */
export async function takeWaitlistLock(tx: Executor, showId: string): Promise<void> {
  await tx.execute(lockWaitlist(showId));
}

type ShowTerms = { open: boolean; offer_seconds: number; ranks: Record<string, number> };

async function showTerms(tx: Executor, showId: string, settings: WaitlistSettings): Promise<ShowTerms | null> {
  return (await tx.execute<ShowTerms>(waitlistShow(showId, settings.offerSeconds))).rows[0] ?? null;
}

/** Whether the show's list takes new entries (open, and the show has not started). */
export async function waitlistOpen(tx: Executor, showId: string, settings: WaitlistSettings): Promise<boolean> {
  return (await showTerms(tx, showId, settings))?.open ?? false;
}

/**
 * Offers the show's free seats to its waiting list, in order, first fit (see above), inside the
 * caller's transaction, which must be the one that freed them or one that runs before any new
 * request of the show is claimed. `claimer` is the caller's when it is claiming seats in the
 * same transaction, so both share what they have spoken for.
 *
 * Stops early when the free seats run out, or when seats exist but another transaction holds
 * them locked (a claim in flight): the sweep's next pass offers those.
 */
export async function offerFreedSeats(
  tx: Executor,
  showId: string,
  settings: WaitlistSettings,
  claimer: Claimer = new Claimer(tx, showId, []),
): Promise<Offer[]> {
  await takeWaitlistLock(tx, showId);
  if (!(await hasWaitingEntries(tx, showId))) return [];
  const terms = await showTerms(tx, showId, settings);
  if (!terms?.open) return [];
  const free = new Map<SectionFilter, number>();
  for (const row of (await tx.execute<{ rank: number; free: number }>(freeSeatsBySection(showId))).rows) free.set(row.rank, row.free);
  const freeIn = (rank: SectionFilter) => (rank === null ? [...free.values()].reduce((sum, n) => sum + n, 0) : (free.get(rank) ?? 0));
  const take = (rank: number, seats: number) => free.set(rank, (free.get(rank) ?? 0) - seats);

  const offers: Offer[] = [];
  let after: Position | null = null;
  for (;;) {
    const anywhere = freeIn(null);
    if (anywhere === 0) return offers;
    type Entry = { id: string; seat_count: number; requested_section: string | null; waitlisted_at: string };
    const entries: Entry[] = (await tx.execute<Entry>(nextEntriesForUpdate(showId, anywhere, after, ENTRY_PAGE))).rows;
    for (const entry of entries) {
      const rank = entry.requested_section === null ? null : (terms.ranks[entry.requested_section] ?? -1);
      // Only entries the free seats can serve are tried: the others keep their place.
      if (rank === -1 || entry.seat_count > freeIn(rank)) continue;
      const verdict = await claimer.takeBestAvailable(rank, entry.seat_count);
      if (verdict.status === 'CONTENDED') return offers;
      if (verdict.status !== 'HELD') continue;
      const ids = verdict.seats.map((seat) => seat.id);
      const labels = verdict.seats.map((seat) => seat.label);
      const updated = await tx.execute(offerSeats(entry.id, ids, labels, terms.offer_seconds));
      if (updated.rowCount !== 1) throw new Error(`waitlist entry ${entry.id} changed under its lock`);
      const held = await tx.execute(holdSeats(ids, ids.map(() => entry.id)));
      if (held.rowCount !== ids.length) throw new Error('offered seats changed under their locks');
      const sections = (await tx.execute<{ rank: number }>(sectionRanksOf(ids))).rows;
      for (const seat of sections) take(seat.rank, 1);
      // booking.held, its data saying from_waitlist: an offer is a hold like any other.
      await recordBookingEvents(tx, [{ type: 'booking.held', bookingId: entry.id }]);
      offers.push({ bookingId: entry.id, showId, seats: labels });
      if (freeIn(null) === 0) return offers;
    }
    if (entries.length < ENTRY_PAGE) return offers;
    const last = entries[entries.length - 1]!;
    after = { at: new Date(last.waitlisted_at), id: last.id };
  }
}

/** Where a WAITLISTED booking stands in its show's list: 1 is next. */
export async function waitlistPosition(db: Executor, booking: { showId: string; waitlistedAt: Date | null; id: string }): Promise<number> {
  if (!booking.waitlistedAt) return 1;
  const row = (await db.execute<{ position: number }>(positionOf(booking.showId, booking.waitlistedAt, booking.id))).rows[0];
  return row?.position ?? 1;
}

export type WaitlistEntry = {
  bookingId: string;
  customerEmail: string;
  position: number;
  seatCount: number;
  section: string | null;
  waitingSince: Date;
};

/** A page of a show's list, in order (admins). */
export async function listWaitlist(db: Executor, showId: string, limit: number, after: Position | null): Promise<Page<WaitlistEntry>> {
  type Row = { id: string; customer_email: string; seat_count: number; requested_section: string | null; waitlisted_at: string; position: number };
  const rows = (await db.execute<Row>(waitlistPage(showId, after, limit + 1))).rows.map(
    (row): WaitlistEntry => ({
      bookingId: row.id,
      customerEmail: row.customer_email,
      position: row.position,
      seatCount: row.seat_count,
      section: row.requested_section,
      waitingSince: new Date(row.waitlisted_at),
    }),
  );
  return pageOf(rows, limit, (entry) => ({ at: entry.waitingSince, id: entry.bookingId }));
}

export type ClosedWaitlist = { closedAt: Date; failed: string[] };

/**
 * Closes the show's list: no request joins it any more, and every entry still waiting fails
 * SOLD_OUT. Under the list's lock, so no offer pass is halfway through it.
 */
export async function closeWaitlist(db: Database, showId: string): Promise<ClosedWaitlist | 'not_found'> {
  return db.transaction(async (tx) => {
    await takeWaitlistLock(tx, showId);
    const closed = (await tx.execute<{ waitlist_closed_at: string }>(markWaitlistClosed(showId))).rows[0];
    if (!closed) return 'not_found' as const;
    const failed = await failEntries(tx, showId);
    return { closedAt: new Date(closed.waitlist_closed_at), failed };
  });
}

/** Every entry still waiting fails SOLD_OUT, each with its booking.failed event. */
async function failEntries(tx: Executor, showId: string): Promise<string[]> {
  const failed = (await tx.execute<{ id: string }>(failWaitingEntries(showId))).rows.map((row) => row.id);
  await recordBookingEvents(tx, failed.map((bookingId) => ({ type: 'booking.failed', bookingId })));
  return failed;
}

export type WaitlistUpkeep = { offers: Offer[]; failed: string[] };

/**
 * The sweep's pass over every list: shows whose sales have closed fail their entries (SOLD_OUT);
 * shows with entries and free seats get an offer pass. Each show is its own short transaction.
 */
export async function keepWaitlists(db: Database, settings: WaitlistSettings): Promise<WaitlistUpkeep> {
  const upkeep: WaitlistUpkeep = { offers: [], failed: [] };
  const shows = (await db.execute<{ show_id: string; closed: boolean; seats_free: boolean }>(showsWithWaitingEntries())).rows;
  for (const show of shows) {
    if (show.closed) {
      const failed = await db.transaction(async (tx) => {
        await takeWaitlistLock(tx, show.show_id);
        return failEntries(tx, show.show_id);
      });
      upkeep.failed.push(...failed);
    } else if (show.seats_free) {
      upkeep.offers.push(...(await db.transaction((tx) => offerFreedSeats(tx, show.show_id, settings))));
    }
  }
  return upkeep;
}
