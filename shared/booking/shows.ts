import { randomBytes } from 'node:crypto';
import { and, asc, desc, eq, sql, type SQL } from 'drizzle-orm';
import type { Database, Executor } from '../db/client.js';
import { seats, showSections, shows, type Show } from '../db/schema/index.js';
import { GENERAL_SECTION, generateSeats, rowLabel, totalSeats, type SectionLayout, type ShowLayout } from './layout.js';
import type { DecideSettings } from './decide.js';
import { pageOf, type Page, type Position } from './page.js';
import {
  effectiveSettings,
  salesState,
  scheduleWithDefaults,
  type SaleOverrides,
  type SaleSchedule,
  type SalesState,
} from './sale-schedule.js';

export type NewShow = {
  name: string;
  startTime: Date;
  layout: ShowLayout;
  /** Times left out take their defaults (scheduleWithDefaults); callers check the order first. */
  schedule?: Partial<SaleSchedule>;
  overrides?: Partial<SaleOverrides>;
};

export type SectionAvailability = {
  name: string;
  price_cents: number;
  rows: number;
  seats_per_row: number;
  total_seats: number;
  available_seats: number;
  held_seats: number;
  booked_seats: number;
};

export type ShowSummary = {
  id: string;
  name: string;
  start_time: string;
  total_seats: number;
  available_seats: number;
  waiting_room_opens_at: string;
  sales_open_at: string;
  sales_close_at: string;
  sales_state: SalesState;
  /** Lowercase hex SHA-256 of the draw seed: the commitment published before the draw. */
  seed_sha256: string;
  /** Effective values: the show's override, else the environment's. */
  hold_seconds: number;
  max_seats_per_customer: number;
  waitlist_offer_seconds: number;
};

export type ShowDetail = ShowSummary & {
  seating: 'general' | 'reserved';
  created_at: string;
  sections: SectionAvailability[];
};

export type SeatView = {
  label: string;
  section: string;
  /** 1-based row number within the section, for ordering and layout. */
  row: number;
  /** The row as printed in the label ("Z", "AA"); null for general admission. */
  row_label: string | null;
  number: number;
  price_cents: number;
  status: string;
};

/** A lapsed hold that the sweep has not reached yet is still sellable; listings say so. */
const AVAILABLE_NOW = sql`(${seats.status} = 'AVAILABLE' OR (${seats.status} = 'HELD' AND ${seats.holdExpiresAt} <= now()))`;

const SEAT_INSERT_CHUNK = 5_000;

export function generalAdmission(total: number, priceCents = 0): ShowLayout {
  return {
    seating: 'general',
    sections: [{ name: GENERAL_SECTION, rank: 0, rows: 1, seatsPerRow: total, priceCents }],
  };
}

/** Creates a show with its seats; read it back with getShow. */
export async function createShow(db: Database, show: NewShow): Promise<{ id: string }> {
  const schedule = scheduleWithDefaults(show.schedule ?? {}, show.startTime, new Date());
  const id = await db.transaction(async (tx) => {
    const [created] = await tx
      .insert(shows)
      .values({
        name: show.name,
        startTime: show.startTime,
        totalSeats: totalSeats(show.layout),
        seating: show.layout.seating,
        ...schedule,
        holdSeconds: show.overrides?.holdSeconds ?? null,
        maxSeatsPerCustomer: show.overrides?.maxSeatsPerCustomer ?? null,
        waitlistOfferSeconds: show.overrides?.waitlistOfferSeconds ?? null,
        // The draw's secret: 32 bytes from the OS's generator, never shown before the draw.
        drawSeed: randomBytes(32),
      })
      .returning({ id: shows.id });
    const showId = created!.id;
    await tx.insert(showSections).values(
      show.layout.sections.map((section) => ({
        showId,
        rank: section.rank,
        name: section.name,
        rows: section.rows,
        seatsPerRow: section.seatsPerRow,
        priceCents: section.priceCents,
      })),
    );
    // Up to 100,000 seats: insert them as arrays in a few statements, not a row at a time.
    let chunk: ReturnType<typeof generateSeats> extends Generator<infer T> ? T[] : never = [];
    const flush = async () => {
      if (chunk.length === 0) return;
      await tx.execute(sql`
        INSERT INTO seats (show_id, label, section, section_rank, row, number, price_cents)
        SELECT ${showId}, * FROM unnest(
          ${sql.param(chunk.map((s) => s.label))}::text[], ${sql.param(chunk.map((s) => s.section))}::text[],
          ${sql.param(chunk.map((s) => s.sectionRank))}::smallint[], ${sql.param(chunk.map((s) => s.row))}::smallint[],
          ${sql.param(chunk.map((s) => s.number))}::int[], ${sql.param(chunk.map((s) => s.priceCents))}::int[])`);
      chunk = [];
    };
    for (const seat of generateSeats(show.layout)) {
      chunk.push(seat);
      if (chunk.length === SEAT_INSERT_CHUNK) await flush();
    }
    await flush();
    return showId;
  });
  return { id };
}

/** The columns every show view is built from, beside its seat counts. */
const saleColumns = {
  waitingRoomOpensAt: shows.waitingRoomOpensAt,
  salesOpenAt: shows.salesOpenAt,
  salesCloseAt: shows.salesCloseAt,
  pausedAt: shows.pausedAt,
  seedSha256: shows.seedSha256,
  holdSeconds: shows.holdSeconds,
  maxSeatsPerCustomer: shows.maxSeatsPerCustomer,
  waitlistOfferSeconds: shows.waitlistOfferSeconds,
};
type SaleRow = Pick<Show, keyof typeof saleColumns>;

/** The schedule part of a show view, sales_state computed now. */
function saleView(row: SaleRow, unsoldSeats: number, defaults: DecideSettings, now: Date) {
  const settings = effectiveSettings(row, defaults);
  return {
    waiting_room_opens_at: row.waitingRoomOpensAt.toISOString(),
    sales_open_at: row.salesOpenAt.toISOString(),
    sales_close_at: row.salesCloseAt.toISOString(),
    sales_state: salesState({ ...row, unsoldSeats }, now),
    seed_sha256: row.seedSha256,
    hold_seconds: settings.holdSeconds,
    max_seats_per_customer: settings.maxSeatsPerCustomer,
    waitlist_offer_seconds: settings.waitlistOfferSeconds,
  };
}

/** Upcoming shows soonest first; past ones most recent first; all of them in start order. */
export type ShowsWhen = 'upcoming' | 'past' | 'all';

export type ShowQuery = { when: ShowsWhen; limit: number; after?: Position | null };

export async function listShows(db: Executor, query: ShowQuery, defaults: DecideSettings): Promise<Page<ShowSummary>> {
  const newestFirst = query.when === 'past';
  const conditions: SQL[] = [];
  if (query.when === 'upcoming') conditions.push(sql`${shows.startTime} > now()`);
  if (query.when === 'past') conditions.push(sql`${shows.startTime} <= now()`);
  if (query.after) {
    const after = sql`(${query.after.at.toISOString()}::timestamptz, ${query.after.id}::uuid)`;
    conditions.push(newestFirst ? sql`(${shows.startTime}, ${shows.id}) < ${after}` : sql`(${shows.startTime}, ${shows.id}) > ${after}`);
  }
  const order = newestFirst ? desc : asc;
  const rows = await db
    .select({
      id: shows.id,
      name: shows.name,
      startTime: shows.startTime,
      totalSeats: shows.totalSeats,
      ...saleColumns,
      available: sql<number>`(SELECT count(*)::int FROM seats WHERE seats.show_id = shows.id AND ${AVAILABLE_NOW})`,
      unsold: sql<number>`(SELECT count(*)::int FROM seats WHERE seats.show_id = shows.id AND ${seats.status} <> 'BOOKED')`,
    })
    .from(shows)
    .where(conditions.length > 0 ? sql.join(conditions, sql` AND `) : undefined)
    .orderBy(order(shows.startTime), order(shows.id))
    .limit(query.limit + 1);
  const page = pageOf(rows, query.limit, (row) => ({ at: row.startTime, id: row.id }));
  const now = new Date();
  return {
    next: page.next,
    items: page.items.map((row) => ({
      id: row.id,
      name: row.name,
      start_time: row.startTime.toISOString(),
      total_seats: row.totalSeats,
      available_seats: row.available,
      ...saleView(row, row.unsold, defaults, now),
    })),
  };
}

export async function getShow(db: Executor, showId: string, defaults: DecideSettings): Promise<ShowDetail | null> {
  const [show] = await db.select().from(shows).where(eq(shows.id, showId));
  if (!show) return null;
  const sections = await db
    .select({
      name: showSections.name,
      priceCents: showSections.priceCents,
      rows: showSections.rows,
      seatsPerRow: showSections.seatsPerRow,
      available: sql<number>`count(*) FILTER (WHERE ${AVAILABLE_NOW})::int`,
      held: sql<number>`count(*) FILTER (WHERE ${seats.status} = 'HELD' AND ${seats.holdExpiresAt} > now())::int`,
      booked: sql<number>`count(*) FILTER (WHERE ${seats.status} = 'BOOKED')::int`,
    })
    .from(showSections)
    .innerJoin(seats, sql`${seats.showId} = ${showSections.showId} AND ${seats.sectionRank} = ${showSections.rank}`)
    .where(eq(showSections.showId, showId))
    .groupBy(showSections.rank, showSections.name, showSections.priceCents, showSections.rows, showSections.seatsPerRow)
    .orderBy(asc(showSections.rank));
  return {
    id: show.id,
    name: show.name,
    start_time: show.startTime.toISOString(),
    total_seats: show.totalSeats,
    available_seats: sections.reduce((sum, section) => sum + section.available, 0),
    ...saleView(show, sections.reduce((sum, section) => sum + section.rows * section.seatsPerRow - section.booked, 0), defaults, new Date()),
    seating: show.seating,
    created_at: show.createdAt.toISOString(),
    sections: sections.map((section) => ({
      name: section.name,
      price_cents: section.priceCents,
      rows: section.rows,
      seats_per_row: section.seatsPerRow,
      total_seats: section.rows * section.seatsPerRow,
      available_seats: section.available,
      held_seats: section.held,
      booked_seats: section.booked,
    })),
  };
}

/**
 * Seats AVAILABLE now (a lapsed hold counts, as listings count it) in each section of a show:
 * what the available-seat counts in Redis are recounted from (shared/booking/available-seats.ts).
 * Empty for an unknown show.
 */
export async function availableBySection(db: Executor, showId: string): Promise<Array<{ section: string; available: number }>> {
  return db
    .select({ section: showSections.name, available: sql<number>`count(*) FILTER (WHERE ${AVAILABLE_NOW})::int` })
    .from(showSections)
    .innerJoin(seats, sql`${seats.showId} = ${showSections.showId} AND ${seats.sectionRank} = ${showSections.rank}`)
    .where(eq(showSections.showId, showId))
    .groupBy(showSections.rank, showSections.name);
}

export async function listSeats(db: Executor, showId: string): Promise<SeatView[]> {
  const rows = await db
    .select({
      label: seats.label,
      section: seats.section,
      row: seats.row,
      number: seats.number,
      priceCents: seats.priceCents,
      status: sql<string>`CASE WHEN ${AVAILABLE_NOW} THEN 'AVAILABLE' ELSE ${seats.status} END`,
      seating: shows.seating,
    })
    .from(seats)
    .innerJoin(shows, eq(shows.id, seats.showId))
    .where(eq(seats.showId, showId))
    .orderBy(asc(seats.sectionRank), asc(seats.row), asc(seats.number));
  return rows.map((row) => ({
    label: row.label,
    section: row.section,
    row: row.row,
    row_label: rowLabel(row.seating, row.row),
    number: row.number,
    price_cents: row.priceCents,
    status: row.status,
  }));
}

/**
 * The status listSeats would give now for some seats of a show (a lapsed hold reads
 * AVAILABLE, as there), in seat order: what a live seat map needs after a change.
 */
export async function seatStatuses(db: Executor, showId: string, labels: readonly string[]): Promise<Array<{ label: string; status: string }>> {
  if (labels.length === 0) return [];
  return db
    .select({ label: seats.label, status: sql<string>`CASE WHEN ${AVAILABLE_NOW} THEN 'AVAILABLE' ELSE ${seats.status} END` })
    .from(seats)
    .where(and(eq(seats.showId, showId), sql`${seats.label} = ANY(${sql.param([...labels])}::text[])`))
    .orderBy(asc(seats.sectionRank), asc(seats.row), asc(seats.number));
}

/**
 * A fingerprint of the statuses listSeats would give now: equal fingerprints mean equal seat
 * maps (seats, labels and prices never change; only statuses do, and a lapsed hold counts as
 * AVAILABLE as there). It is an XOR of one 64-bit hash per seat, computed in Postgres over the
 * show's seats and returned as one row, so checking "has the map changed?" costs the API
 * nothing and Postgres a scan of one show's seats, far less than listing them.
 */
export async function seatsFingerprint(db: Executor, showId: string): Promise<string> {
  const [row] = await db
    .select({
      seats: sql<number>`count(*)::int`,
      hash: sql<string>`coalesce(bit_xor(hashtextextended(${seats.id}::text || ':' || CASE WHEN ${AVAILABLE_NOW} THEN 'AVAILABLE' ELSE ${seats.status} END, 0)), 0)::text`,
    })
    .from(seats)
    .where(eq(seats.showId, showId));
  return `${row?.seats ?? 0}:${row?.hash ?? 0}`;
}

/**
 * A show's seating plan, start time, sale schedule and overrides: what a booking request is
 * checked against before queueing, and what the worker decides it with.
 */
export type ShowPlan = ShowLayout & SaleSchedule & SaleOverrides & { startTime: Date };

/** The immutable seating plan of a show: enough to validate requests without reading seats. */
export async function loadLayout(db: Executor, showId: string): Promise<ShowPlan | null> {
  const [show] = await db
    .select({
      seating: shows.seating,
      startTime: shows.startTime,
      waitingRoomOpensAt: shows.waitingRoomOpensAt,
      salesOpenAt: shows.salesOpenAt,
      salesCloseAt: shows.salesCloseAt,
      holdSeconds: shows.holdSeconds,
      maxSeatsPerCustomer: shows.maxSeatsPerCustomer,
      waitlistOfferSeconds: shows.waitlistOfferSeconds,
    })
    .from(shows)
    .where(eq(shows.id, showId));
  if (!show) return null;
  const sections = await db
    .select()
    .from(showSections)
    .where(eq(showSections.showId, showId))
    .orderBy(asc(showSections.rank));
  return {
    ...show,
    sections: sections.map(
      (section): SectionLayout => ({
        name: section.name,
        rank: section.rank,
        rows: section.rows,
        seatsPerRow: section.seatsPerRow,
        priceCents: section.priceCents,
      }),
    ),
  };
}

/** A show's sales_open_at as stored now (PATCH may move it); null when there is no such show. */
export async function salesOpenAtOf(db: Executor, showId: string): Promise<Date | null> {
  const [show] = await db.select({ salesOpenAt: shows.salesOpenAt }).from(shows).where(eq(shows.id, showId));
  return show?.salesOpenAt ?? null;
}

/**
 * How long a process trusts the plan it has read of a show. Layouts never change, but the sale
 * schedule and overrides do (PATCH /admin/shows/:id) and a show can be deleted: the process that
 * made the change drops its entry at once (`forget`), every other API and worker process sees it
 * at most this long after (one small read per show every few seconds per process). So a PATCHed
 * close or opening is honoured everywhere within this bound, and a deleted show's requests are
 * accepted for at most this long elsewhere (they end FAILED).
 */
export const PLAN_MAX_AGE_MS = 5_000;

/** A show's entry in a LayoutCache. */
type CachedPlan = {
  /** The read in progress or done. */
  plan: Promise<ShowPlan | null>;
  loadedAt: number;
  /** The newest plan a read returned, kept across re-reads: what a failed re-read falls back to. */
  lastKnown: ShowPlan | null;
};

/**
 * Each process keeps the plans (ShowPlan) of the shows it has seen, re-read once older than
 * `maxAgeMs`: the API validates a booking for a known show without touching Postgres. Unknown
 * ids are not cached (a show created a moment later must be found). When the re-read fails
 * (Postgres down), the known plan is kept: bookings keep being accepted through an outage.
 */
export class LayoutCache {
  private readonly layouts = new Map<string, CachedPlan>();

  constructor(
    private readonly db: Executor,
    private readonly maxEntries = 10_000,
    private readonly maxAgeMs = PLAN_MAX_AGE_MS,
  ) {}

  async get(showId: string): Promise<ShowPlan | null> {
    let entry = this.layouts.get(showId);
    if (!entry || Date.now() - entry.loadedAt > this.maxAgeMs) entry = this.load(showId, entry?.lastKnown ?? null);
    try {
      const layout = await entry.plan;
      if (!layout && this.layouts.get(showId) === entry) this.layouts.delete(showId);
      return layout;
    } catch (error) {
      // Every request that waited on this re-read falls back, not only the one that started it:
      // under load many arrive while it fails.
      if (entry.lastKnown) {
        // Try Postgres again after another maxAgeMs, not on every request of the outage.
        if (this.layouts.get(showId) === entry) this.layouts.set(showId, { plan: Promise.resolve(entry.lastKnown), loadedAt: Date.now(), lastKnown: entry.lastKnown });
        return entry.lastKnown;
      }
      if (this.layouts.get(showId) === entry) this.layouts.delete(showId);
      throw error;
    }
  }

  /** Starts reading a show's plan; `lastKnown` is what a failed read falls back to. */
  private load(showId: string, lastKnown: ShowPlan | null): CachedPlan {
    const entry: CachedPlan = { plan: loadLayout(this.db, showId), loadedAt: Date.now(), lastKnown };
    entry.plan.then(
      (plan) => {
        if (plan) entry.lastKnown = plan;
      },
      () => {},
    );
    this.layouts.set(showId, entry);
    if (this.layouts.size > this.maxEntries) this.layouts.delete(this.layouts.keys().next().value!);
    return entry;
  }

  /** Drops a show at once in this process (the one that changed or deleted it). */
  forget(showId: string): void {
    this.layouts.delete(showId);
  }
}
