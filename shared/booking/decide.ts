import { performance } from 'node:perf_hooks';
import { sql } from 'drizzle-orm';
import type { Database, Executor } from '../db/client.js';
import type { BookingJob } from '../queue/catalog.js';
import {
  countClaimable,
  firstAdjacentRun,
  listFreeSeats,
  lockSeatsIfFree,
  type FreeSeat,
  lockFirstAvailable,
  lockSeatsByLabel,
  type ClaimedSeat,
  type SectionFilter,
} from './allocate.js';
import { releaseLapsedHolds } from './expire.js';
import type { FailureReason } from './statuses.js';
import type { ShowLayout } from './layout.js';

/**
 * Deciding queued booking requests: one Postgres transaction claims seats for a batch of
 * requests of the same show (a batch of one when traffic is light), writes their bookings and
 * marks their seats HELD. All or nothing: if the transaction fails, none of the batch is
 * decided and each request is retried.
 */

export type DecidedBooking = {
  id: string;
  status: 'HELD' | 'FAILED' | 'CONFIRMED' | 'EXPIRED' | 'CANCELLED';
  reason: string | null;
  seats: string[];
  holdExpiresAt: Date | null;
  decidedAt: Date;
};

export type Decision =
  | { kind: 'decided'; booking: DecidedBooking; duplicate: boolean }
  /** Seats exist but other transactions held their locks: decide again shortly. */
  | { kind: 'contended' };

export type DecideSettings = {
  holdSeconds: number;
  maxSeatsPerCustomer: number;
};

/**
 * Optional timings for whoever runs decisions (the worker's metrics). Plain callbacks keep the
 * domain free of any metrics library.
 */
export type DecideObserver = {
  /** Seconds waited on the blocking locks: per-customer advisory locks and specific seats (SKIP LOCKED never waits). */
  lockWait?: (seconds: number) => void;
  /** Seconds from the transaction's first statement to its commit or rollback. */
  transaction?: (seconds: number, outcome: 'committed' | 'rolled_back') => void;
};

const secondsSince = (start: number) => (performance.now() - start) / 1_000;

/** Thrown when a request in the batch was decided concurrently elsewhere; the batch is redone. */
export class ConcurrentDecisionError extends Error {
  override name = 'ConcurrentDecisionError';
}

type Verdict =
  | { status: 'HELD'; seats: ClaimedSeat[] }
  | { status: 'FAILED'; reason: FailureReason }
  | { status: 'CONTENDED' };

type ExistingRow = {
  id: string;
  status: DecidedBooking['status'];
  failure_reason: string | null;
  seat_labels: string[];
  hold_expires_at: Date | null;
  decided_at: Date;
};

export async function decideBookings(
  db: Database,
  layout: ShowLayout,
  requests: BookingJob[],
  settings: DecideSettings,
  observer: DecideObserver = {},
): Promise<Map<string, Decision>> {
  const showId = requests[0]?.show_id;
  if (!showId) return new Map();
  if (requests.some((request) => request.show_id !== showId)) throw new Error('a batch holds one show only');
  // Started inside the callback: waiting for a pool connection is not transaction time.
  let began: number | undefined;
  try {
    const decisions = await db.transaction((tx) => {
      began = performance.now();
      return decideInTransaction(tx, showId, layout, requests, settings, observer);
    });
    if (began !== undefined) observer.transaction?.(secondsSince(began), 'committed');
    return decisions;
  } catch (error) {
    if (began !== undefined) observer.transaction?.(secondsSince(began), 'rolled_back');
    throw error;
  }
}

async function decideInTransaction(
  tx: Executor,
  showId: string,
  layout: ShowLayout,
  requests: BookingJob[],
  settings: DecideSettings,
  observer: DecideObserver,
): Promise<Map<string, Decision>> {
  const decisions = new Map<string, Decision>();

  // 1. At-least-once delivery: a request already decided keeps its decision, untouched.
  const existing = await tx.execute<ExistingRow>(sql`
    SELECT id, status, failure_reason, seat_labels, hold_expires_at, decided_at
    FROM bookings WHERE id = ANY(${sql.param(requests.map((r) => r.id))}::uuid[])`);
  for (const row of existing.rows) {
    decisions.set(row.id, { kind: 'decided', duplicate: true, booking: fromRow(row) });
  }
  const fresh = requests
    .filter((request) => !decisions.has(request.id))
    .sort((a, b) => a.accepted_at.localeCompare(b.accepted_at));
  if (fresh.length === 0) return decisions;

  // Sold-out fast path: when the committed state has no AVAILABLE seat and no lapsed hold, no
  // request can get a seat, so the batch is decided without a single lock. Seats that other
  // transactions are claiming right now are still AVAILABLE in the committed state, so this
  // never answers SOLD_OUT early; under a burst most requests after the sell-out end here.
  if (await isSoldOut(tx, showId)) {
    // The reason follows the same precedence as below (the cap first); no seat is given, so
    // reading the customers' live seats needs no lock.
    const owned = await liveSeatsByCustomer(tx, showId, fresh);
    observer.lockWait?.(0); // one observation per claim transaction; this one waited on no lock
    const verdicts = new Map<string, Verdict>(
      fresh.map((request): [string, Verdict] => {
        const over = (owned.get(request.customer_email) ?? 0) + request.seat_count > settings.maxSeatsPerCustomer;
        return [request.id, { status: 'FAILED', reason: over ? 'LIMIT_EXCEEDED' : request.seats ? 'SEATS_UNAVAILABLE' : 'SOLD_OUT' }];
      }),
    );
    return writeDecisions(tx, showId, fresh, verdicts, settings, decisions);
  }

  // 2. Per-customer cap. Advisory locks (taken in key order, so they cannot deadlock) serialise
  //    concurrent claims by the same customer for this show across all workers; then we read
  //    how many live seats each customer already has.
  const emails = [...new Set(fresh.map((request) => request.customer_email))];
  const advisoryStarted = performance.now();
  await tx.execute(sql`
    SELECT pg_advisory_xact_lock(key) FROM (
      SELECT DISTINCT hashtextextended(${showId} || '|' || email, 0) AS key
      FROM unnest(${sql.param(emails)}::text[]) AS email ORDER BY key
    ) AS keys`);
  let lockWait = secondsSince(advisoryStarted);
  const seatsByCustomer = await liveSeatsByCustomer(tx, showId, fresh);

  // 3. Specific seats: lock every label this batch asks for in one statement, in id order.
  const specificLabels = [...new Set(fresh.flatMap((request) => request.seats ?? []))];
  // A seat whose hold has lapsed is for sale again (listings already show it AVAILABLE), even
  // before the sweep reaches it: release such holds first, while this transaction holds no
  // seat lock, or the request would fail SEATS_UNAVAILABLE on a seat nobody holds.
  if (specificLabels.length > 0) {
    const lapsed = await tx.execute<{ lapsed: boolean }>(sql`
      SELECT EXISTS (SELECT 1 FROM seats
        WHERE show_id = ${showId} AND label = ANY(${sql.param(specificLabels)}::text[])
          AND status = 'HELD' AND hold_expires_at <= now()) AS lapsed`);
    if (lapsed.rows[0]?.lapsed) await releaseLapsedHolds(tx, { showId, limit: 10_000 });
  }
  const specificStarted = performance.now();
  const specific = new Map((await lockSeatsByLabel(tx, showId, specificLabels)).map((seat) => [seat.label, seat]));
  lockWait += specificLabels.length > 0 ? secondsSince(specificStarted) : 0;
  observer.lockWait?.(lockWait);

  const claimer = new Claimer(tx, showId, [...specific.values()].map((seat) => seat.id));
  claimer.planSingles(fresh.filter((r) => !r.seats && r.seat_count === 1).map((r) => rankOf(layout, r.section)));

  // 4. Decide each request in arrival order.
  const verdicts = new Map<string, Verdict>();
  for (const request of fresh) {
    const owned = seatsByCustomer.get(request.customer_email) ?? 0;
    let verdict: Verdict;
    if (owned + request.seat_count > settings.maxSeatsPerCustomer) {
      verdict = { status: 'FAILED', reason: 'LIMIT_EXCEEDED' };
    } else if (request.seats) {
      verdict = claimer.takeSpecific(request.seats, specific);
    } else {
      verdict = await claimer.takeBestAvailable(rankOf(layout, request.section), request.seat_count);
    }
    if (verdict.status === 'HELD') seatsByCustomer.set(request.customer_email, owned + request.seat_count);
    verdicts.set(request.id, verdict);
  }

  return writeDecisions(tx, showId, fresh, verdicts, settings, decisions);
}

/**
 * Writes the decided bookings, then points their seats at them (the seats' foreign key needs
 * the booking row first). Requests left CONTENDED are not written: they are decided again.
 */
async function writeDecisions(
  tx: Executor,
  showId: string,
  fresh: BookingJob[],
  verdicts: Map<string, Verdict>,
  settings: DecideSettings,
  decisions: Map<string, Decision>,
): Promise<Map<string, Decision>> {
  const decided = fresh.filter((request) => verdicts.get(request.id)?.status !== 'CONTENDED');
  const rows = decided.map((request) => {
    const verdict = verdicts.get(request.id) as Exclude<Verdict, { status: 'CONTENDED' }>;
    const held = verdict.status === 'HELD' ? verdict.seats : [];
    return {
      id: request.id,
      customer_email: request.customer_email,
      seat_count: request.seat_count,
      requested_section: request.section,
      requested_seats: request.seats,
      status: verdict.status,
      failure_reason: verdict.status === 'FAILED' ? verdict.reason : null,
      idempotency_key: request.idempotency_key,
      accepted_at: request.accepted_at,
      seat_ids: held.map((seat) => seat.id),
      seat_labels: held.map((seat) => seat.label),
    };
  });
  if (rows.length > 0) {
    const inserted = await tx.execute<ExistingRow>(sql`
      INSERT INTO bookings (id, show_id, customer_email, seat_count, requested_section, requested_seats,
                            status, failure_reason, idempotency_key, accepted_at, decided_at, updated_at,
                            hold_expires_at, seat_ids, seat_labels, total_cents)
      SELECT r.id, ${showId}, r.customer_email, r.seat_count, r.requested_section, r.requested_seats,
             r.status, r.failure_reason, r.idempotency_key, r.accepted_at, now(), now(),
             CASE WHEN r.status = 'HELD' THEN now() + make_interval(secs => ${settings.holdSeconds}) END,
             r.seat_ids, r.seat_labels,
             -- Priced here, from the seats this transaction has locked: no price travels in the job.
             (SELECT coalesce(sum(price_cents), 0) FROM seats WHERE id = ANY(r.seat_ids))
      FROM jsonb_to_recordset(${JSON.stringify(rows)}::jsonb) AS r(
        id uuid, customer_email text, seat_count int, requested_section text, requested_seats text[],
        status text, failure_reason text, idempotency_key text, accepted_at timestamptz,
        seat_ids int[], seat_labels text[])
      ON CONFLICT (id) DO NOTHING
      RETURNING id, status, failure_reason, seat_labels, hold_expires_at, decided_at`);
    // Another worker decided one of these ids between our check and our insert (a duplicate
    // delivery running in parallel). Roll back everything and let the caller redo the batch.
    if (inserted.rows.length !== rows.length) throw new ConcurrentDecisionError('booking decided concurrently');
    for (const row of inserted.rows) decisions.set(row.id, { kind: 'decided', duplicate: false, booking: fromRow(row) });

    const heldSeatIds = rows.flatMap((row) => row.seat_ids);
    const heldBookingIds = rows.flatMap((row) => row.seat_ids.map(() => row.id));
    if (heldSeatIds.length > 0) {
      const updated = await tx.execute(sql`
        UPDATE seats s
        SET status = 'HELD', booking_id = v.booking_id, hold_expires_at = b.hold_expires_at
        FROM unnest(${sql.param(heldSeatIds)}::int[], ${sql.param(heldBookingIds)}::uuid[]) AS v(seat_id, booking_id)
        JOIN bookings b ON b.id = v.booking_id
        WHERE s.id = v.seat_id AND s.status = 'AVAILABLE'`);
      // Every seat was locked and seen AVAILABLE by this transaction; anything else is a bug,
      // and committing would leave a booking pointing at seats it does not hold.
      if (updated.rowCount !== heldSeatIds.length) throw new Error('claimed seats changed under their locks');
    }
  }
  for (const request of fresh) {
    if (verdicts.get(request.id)?.status === 'CONTENDED') decisions.set(request.id, { kind: 'contended' });
  }
  return decisions;
}

/** Seats each customer of these requests holds or has booked for the show (lapsed holds excluded). */
async function liveSeatsByCustomer(tx: Executor, showId: string, requests: BookingJob[]): Promise<Map<string, number>> {
  const emails = [...new Set(requests.map((request) => request.customer_email))];
  const live = await tx.execute<{ customer_email: string; seats: number }>(sql`
    SELECT customer_email, sum(cardinality(seat_ids))::int AS seats
    FROM bookings
    WHERE show_id = ${showId} AND customer_email = ANY(${sql.param(emails)}::text[])
      AND (status = 'CONFIRMED' OR (status = 'HELD' AND hold_expires_at > now()))
    GROUP BY customer_email`);
  return new Map(live.rows.map((row) => [row.customer_email, row.seats]));
}

/** No seat AVAILABLE and no lapsed hold to release, read from the committed state without locks. */
async function isSoldOut(tx: Executor, showId: string): Promise<boolean> {
  const result = await tx.execute<{ sold_out: boolean }>(sql`
    SELECT NOT EXISTS (SELECT 1 FROM seats WHERE show_id = ${showId} AND status = 'AVAILABLE')
       AND NOT EXISTS (SELECT 1 FROM bookings WHERE show_id = ${showId} AND status = 'HELD' AND hold_expires_at <= now())
       AS sold_out`);
  return result.rows[0]?.sold_out ?? false;
}

/** Hands out seats within one transaction, remembering what it has already spoken for. */
class Claimer {
  /** Seat ids assigned to a request of this batch, or locked for one (specific or planned singles). */
  private readonly reserved: Set<number>;
  /** Seat ids given to a request of this batch. */
  private readonly assigned = new Set<number>();
  private readonly singlePools = new Map<SectionFilter, ClaimedSeat[]>();
  private singleDemand = new Map<SectionFilter, number>();
  /** Sections whose single-seat pool came back short: fetching again would find nothing new. */
  private readonly exhaustedPools = new Set<SectionFilter>();
  /**
   * Seats verified AVAILABLE (committed, not ours) at a sold-out check, per section. A later
   * request of this batch needing more than that is sold out too, with no further query; this
   * is what keeps a burst against a sold-out show cheap.
   */
  private readonly verifiedAvailable = new Map<SectionFilter, number>();
  /** The AVAILABLE seats per section as this batch first read them (for adjacent runs). */
  private readonly freeSeats = new Map<SectionFilter, FreeSeat[]>();
  /** Seats of those lists found taken or locked by another transaction since. */
  private readonly unavailable = new Set<number>();
  /** Sections where free seats exist but all are locked by other transactions right now. */
  private readonly contended = new Set<SectionFilter>();
  private releasedLapsed = false;

  constructor(
    private readonly tx: Executor,
    private readonly showId: string,
    specificIds: number[],
  ) {
    this.reserved = new Set(specificIds);
  }

  /** Single-seat requests are the hot path: their seats are locked in one query per section. */
  planSingles(ranks: SectionFilter[]): void {
    for (const rank of ranks) this.singleDemand.set(rank, (this.singleDemand.get(rank) ?? 0) + 1);
  }

  takeSpecific(labels: string[], locked: Map<string, { id: number; label: string; status: string }>): Verdict {
    const seats = labels.map((label) => locked.get(label));
    const free = seats.every((seat) => seat && seat.status === 'AVAILABLE' && !this.assigned.has(seat.id));
    if (!free) return { status: 'FAILED', reason: 'SEATS_UNAVAILABLE' };
    const claimed = seats as ClaimedSeat[];
    for (const seat of claimed) this.assigned.add(seat.id);
    return { status: 'HELD', seats: claimed.map(({ id, label }) => ({ id, label })) };
  }

  async takeBestAvailable(rank: SectionFilter, count: number): Promise<Verdict> {
    const known = this.verifiedAvailable.get(rank);
    if (known !== undefined && count > known) return { status: 'FAILED', reason: 'SOLD_OUT' };
    if (count === 1 && this.contended.has(rank)) return { status: 'CONTENDED' };
    for (;;) {
      const seats = count === 1 ? await this.takeSingle(rank) : await this.takeMany(rank, count);
      if (seats) {
        for (const seat of seats) {
          this.assigned.add(seat.id);
          this.reserved.add(seat.id);
        }
        return { status: 'HELD', seats };
      }
      // A shortfall. Only the committed state decides whether it is real: seats that other
      // transactions are locking right now still count, so SKIP LOCKED never reads as sold out.
      const claimable = await countClaimable(this.tx, this.showId, rank, [...this.assigned]);
      if (claimable.available >= count) {
        if (count === 1 && this.exhaustedPools.has(rank)) this.contended.add(rank);
        return { status: 'CONTENDED' };
      }
      if (claimable.lapsedHolds) {
        if (!this.releasedLapsed) {
          // Holds have lapsed but the sweep has not reached them yet: release them now, then retry.
          this.releasedLapsed = true;
          await releaseLapsedHolds(this.tx, { showId: this.showId, limit: 10_000 });
          this.singlePools.clear();
          this.freeSeats.clear();
          this.unavailable.clear();
          this.exhaustedPools.clear();
          this.verifiedAvailable.clear();
          this.contended.clear();
          continue;
        }
        // Lapsed holds we could not release are locked by another transaction (a sweep, a
        // confirm expiring them, another claim) releasing them right now: their seats are not
        // gone, so this is not sold out yet.
        return { status: 'CONTENDED' };
      }
      this.verifiedAvailable.set(rank, claimable.available);
      return { status: 'FAILED', reason: 'SOLD_OUT' };
    }
  }

  private async takeSingle(rank: SectionFilter): Promise<ClaimedSeat[] | null> {
    let pool = this.singlePools.get(rank);
    if ((!pool || pool.length === 0) && !this.exhaustedPools.has(rank)) {
      const demand = Math.max(1, this.singleDemand.get(rank) ?? 1);
      pool = await lockFirstAvailable(this.tx, this.showId, rank, demand, [...this.reserved]);
      for (const seat of pool) this.reserved.add(seat.id);
      this.singlePools.set(rank, pool);
      if (pool.length < demand) this.exhaustedPools.add(rank);
    }
    const seat = pool?.shift();
    if (!seat) return null;
    this.singleDemand.set(rank, (this.singleDemand.get(rank) ?? 1) - 1);
    return [seat];
  }

  private async takeMany(rank: SectionFilter, count: number): Promise<ClaimedSeat[] | null> {
    const adjacent = await this.takeAdjacent(rank, count);
    if (adjacent) return adjacent;
    const scattered = await lockFirstAvailable(this.tx, this.showId, rank, count, [...this.reserved, ...this.unavailable]);
    if (scattered.length === count) return scattered;
    // Keep what we locked out of other requests' way in this batch; it is released at commit.
    for (const seat of scattered) this.reserved.add(seat.id);
    return null;
  }

  /**
   * `count` adjacent seats in one row: the best runs of the batch's free list are tried in seat
   * order, each locked whole or not at all (a seat another transaction took meanwhile is
   * remembered and the search moves on).
   */
  private async takeAdjacent(rank: SectionFilter, count: number): Promise<ClaimedSeat[] | null> {
    let free = this.freeSeats.get(rank);
    if (!free) {
      free = await listFreeSeats(this.tx, this.showId, rank);
      this.freeSeats.set(rank, free);
    }
    const excluded = (id: number) => this.reserved.has(id) || this.unavailable.has(id);
    for (let attempt = 0; attempt < RUN_CANDIDATES; attempt++) {
      const run = firstAdjacentRun(free, count, excluded);
      if (!run) return null;
      const locked = await lockSeatsIfFree(this.tx, run.map((seat) => seat.id));
      if (locked.length === count) return locked;
      const got = new Set(locked.map((seat) => seat.id));
      for (const seat of run) {
        if (got.has(seat.id)) this.reserved.add(seat.id); // locked by us but not used: keep it out of this batch
        else this.unavailable.add(seat.id);
      }
    }
    return null;
  }
}

/**
 * Runs of adjacent seats a claim tries before settling for scattered seats. The free list
 * cannot see row locks, so under a burst the best runs are often being claimed by other
 * transactions; with only a few tries a group would be split across rows while whole runs
 * were free further back. A failed try costs one index probe.
 */
const RUN_CANDIDATES = 20;

/** A request's section name as the seat index's rank; null means any section, best first. */
function rankOf(layout: ShowLayout, section: string | null): SectionFilter {
  if (section === null) return null;
  const found = layout.sections.find((candidate) => candidate.name === section);
  // The API validated the section against the same immutable layout.
  if (!found) throw new Error(`section ${section} not in show layout`);
  return found.rank;
}

function fromRow(row: ExistingRow): DecidedBooking {
  return {
    id: row.id,
    status: row.status,
    reason: row.failure_reason,
    seats: row.seat_labels,
    holdExpiresAt: row.hold_expires_at ? new Date(row.hold_expires_at) : null,
    decidedAt: new Date(row.decided_at),
  };
}
