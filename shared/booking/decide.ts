import { performance } from 'node:perf_hooks';
import { retriedStatement, type Database, type Executor } from '../db/client.js';
import { executePrepared } from '../db/prepared.js';
import type { BookingJob } from '../queue/catalog.js';
import { Claimer, countClaimable, lockSeatsByLabel, rankOf, type Verdict } from './allocate.js';
import { releaseLapsedHolds } from './expire.js';
import { CLAIM_RELEASE_LIMIT } from './sql/holds.js';
import { offerFreedSeats, takeWaitlistLock, waitlistOpen } from './waitlist.js';
import { recordBookingEvents } from '../webhooks/outbox.js';
import type { ShowLayout } from './layout.js';
import type { DecidedStatus, FailureReason } from './statuses.js';
import {
  claimStanding,
  decidedAlready,
  firstLook,
  lockCustomers,
  writeDecisions as writeDecisionsSql,
  type DecisionRow,
  type LookedUpRequest,
} from './sql/decisions.js';

/**
 * Deciding queued booking requests: one Postgres transaction claims seats for a batch of
 * requests of the same show (a batch of one when traffic is light), writes their bookings and
 * marks their seats HELD. All or nothing: if the transaction fails, none of the batch is
 * decided and each request is retried.
 */

export type DecidedBooking = {
  id: string;
  status: DecidedStatus;
  /** Set exactly when FAILED (CHECK bookings_failed_has_reason). */
  reason: FailureReason | null;
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
  /** WAITLIST_OFFER_SECONDS: how long an offer from the waiting list holds, unless the show says otherwise. */
  waitlistOfferSeconds: number;
};

/** A request's verdict in this transaction: a claim's, or a place on the waiting list. */
type RequestVerdict = Verdict | { status: 'WAITLISTED' };

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

/** A booking row as the statements return it; read through JSON (claimStanding), its times are ISO strings. */
type ExistingRow = {
  id: string;
  status: DecidedBooking['status'];
  failure_reason: FailureReason | null;
  seat_labels: string[];
  hold_expires_at: Date | string | null;
  decided_at: Date | string;
};

/** How a caller runs a batch's decision; every field may be left out. */
export type DecideOptions = {
  observer?: DecideObserver;
  /**
   * Requests per claim transaction at most (WORKER_BATCH_SIZE): each takes an advisory lock per
   * customer, and those live in Postgres's shared lock table. A batch the first look decides
   * takes no lock, so a larger batch is fine until it needs the claim transaction; then it is
   * claimed in transactions of this many, in line order.
   */
  claimBatch?: number;
  /**
   * The caller expects the show to have seats (the worker: it has not found the show sold out,
   * or has not seen it yet): the first look, whose sold-out check would only say no, is left out, and the claim transaction finds
   * the batch's earlier decisions itself, in a statement it runs anyway. One round trip fewer
   * per batch; wrong about a sold-out show, it costs that batch the locking path, which still
   * answers SOLD_OUT only from the committed state.
   */
  seatsLikely?: boolean;
};

export async function decideBookings(
  db: Database,
  layout: ShowLayout,
  requests: BookingJob[],
  settings: DecideSettings,
  { observer = {}, claimBatch = Infinity, seatsLikely = false }: DecideOptions = {},
): Promise<Map<string, Decision>> {
  const showId = requests[0]?.show_id;
  if (!showId) return new Map();
  if (requests.some((request) => request.show_id !== showId)) throw new Error('a batch holds one show only');
  const decisions = new Map<string, Decision>();

  // 1. The batch's first look, a statement on its own, unless `seatsLikely` leaves it out (the
  //    claim transaction then finds earlier decisions in its step 2). At-least-once delivery: a
  //    request already decided keeps its decision, untouched. Sold-out fast path: when the committed
  //    state has no AVAILABLE seat and no lapsed hold, no request can get a seat, so the same
  //    statement decides the whole batch without a single lock, unless a webhook listens (its
  //    events are written in the transaction below). Seats that other transactions are
  //    claiming right now are still AVAILABLE in the committed state, so this never answers
  //    SOLD_OUT early; under a burst most requests after the sell-out end here. Requests that
  //    may join the waiting list take the full path: joining counts against the customer's cap,
  //    which needs the customer's lock.
  const mayWaitlist = requests.some((request) => request.waitlist);
  let soldOutAtFirstLook = false;
  if (!seatsLikely) {
    const looked = performance.now();
    const first = await retriedStatement(db, () =>
      db.execute<LookRow>(firstLook(showId, requests.map(lookedUp), settings.maxSeatsPerCustomer, mayWaitlist ? 'never' : 'unlistened')),
    );
    const look = readLook(first.rows, decisions);
    if (look.decidedHere) {
      observer.lockWait?.(0); // one observation per claim; this one waited on no lock
      observer.transaction?.(secondsSince(looked), 'committed');
      // Not written and not found: another worker decided them after this statement's snapshot.
      const raced = requests.filter((request) => !decisions.has(request.id));
      if (raced.length > 0) await readDecidedBefore(db, raced, decisions);
      return decisions;
    }
    soldOutAtFirstLook = !mayWaitlist && look.soldOut;
  }
  // In the order given, which is the line's: batch jobs are taken first in, first out and keep
  // their requests in order, and a drawn waiting room is released in draw order (not in order
  // of acceptance: shared/booking/draw.ts).
  const fresh = requests.filter((request) => !decisions.has(request.id));
  if (fresh.length === 0) return decisions;

  for (let start = 0; start < fresh.length; start += claimBatch) {
    const claim = fresh.slice(start, start + claimBatch);
    // Started inside the callback: waiting for a pool connection is not transaction time.
    let began: number | undefined;
    try {
      await db.transaction((tx) => {
        began = performance.now();
        return decideInTransaction(tx, showId, layout, claim, settings, observer, decisions, { soldOutAtFirstLook, looked: !seatsLikely });
      });
      if (began !== undefined) observer.transaction?.(secondsSince(began), 'committed');
    } catch (error) {
      if (began !== undefined) observer.transaction?.(secondsSince(began), 'rolled_back');
      throw error;
    }
  }
  return decisions;
}

type LookRow = { sold_out: boolean; listened: boolean; fresh: boolean } & (ExistingRow | { [K in keyof ExistingRow]: null });

const lookedUp = (request: BookingJob): LookedUpRequest => ({
  id: request.id,
  customer_email: request.customer_email,
  seat_count: request.seat_count,
  requested_section: request.section,
  requested_seats: request.seats,
  idempotency_key: request.idempotency_key,
  accepted_at: request.accepted_at,
});

/** Puts a first look's bookings into `decisions`: those found as decided before, those it wrote as fresh. */
function readLook(rows: LookRow[], decisions: Map<string, Decision>): { soldOut: boolean; decidedHere: boolean; written: string[] } {
  const written: string[] = [];
  for (const row of rows) {
    if (row.id === null) continue;
    decisions.set(row.id, { kind: 'decided', duplicate: !row.fresh, booking: fromRow(row as ExistingRow) });
    if (row.fresh) written.push(row.id);
  }
  const flags = rows[0];
  return { soldOut: flags?.sold_out === true, decidedHere: flags?.sold_out === true && !flags.listened, written };
}

/** Requests decided elsewhere meanwhile, read back as decided before. */
async function readDecidedBefore(db: Executor, requests: BookingJob[], decisions: Map<string, Decision>): Promise<void> {
  const found = await db.execute<ExistingRow>(decidedAlready(requests.map((request) => request.id)));
  for (const row of found.rows) decisions.set(row.id, { kind: 'decided', duplicate: true, booking: fromRow(row) });
  if (requests.some((request) => !decisions.has(request.id))) throw new ConcurrentDecisionError('booking decided concurrently');
}

/**
 * The claim transaction, for the requests the first look left (`fresh`), in line order. A show
 * the first look found sold out gets here only when a webhook listens: the same statement then
 * decides the batch inside this transaction, which writes its events.
 */
async function decideInTransaction(
  tx: Executor,
  showId: string,
  layout: ShowLayout,
  fresh: BookingJob[],
  settings: DecideSettings,
  observer: DecideObserver,
  decisions: Map<string, Decision>,
  /** `looked`: the batch had its first look, which found its earlier decisions already. */
  { soldOutAtFirstLook, looked }: { soldOutAtFirstLook: boolean; looked: boolean },
): Promise<Map<string, Decision>> {
  if (soldOutAtFirstLook) {
    const again = await tx.execute<LookRow>(firstLook(showId, fresh.map(lookedUp), settings.maxSeatsPerCustomer, 'always'));
    const look = readLook(again.rows, decisions);
    if (look.soldOut) {
      observer.lockWait?.(0);
      // Another worker decided one of these between the two looks: roll back and redo the batch.
      if (fresh.some((request) => !decisions.has(request.id))) throw new ConcurrentDecisionError('booking decided concurrently');
      await recordBookingEvents(
        tx,
        look.written.map((bookingId) => ({ type: EVENT_OF.FAILED, bookingId })),
      );
      return decisions;
    }
    // Seats came free since the first look (a cancel, a lapsed hold): the full path below.
    fresh = fresh.filter((request) => !decisions.has(request.id));
    if (fresh.length === 0) return decisions;
  }

  // 2. Per-customer cap. Advisory locks (taken in key order, so they cannot deadlock) serialise
  //    concurrent claims by the same customer for this show across all workers; then we read
  //    how many live seats each customer already has, and (for 3b) whether the show has a
  //    waiting list, in one statement.
  const emails = [...new Set(fresh.map((request) => request.customer_email))];
  const advisoryStarted = performance.now();
  await executePrepared(tx, lockCustomers(showId, emails));
  let lockWait = secondsSince(advisoryStarted);
  const standing = await readClaimStanding(tx, showId, emails, looked ? [] : fresh.map((request) => request.id));
  const { seatsByCustomer, listed } = standing;
  // At-least-once delivery, for a batch that had no first look: a request decided before keeps
  // its decision, untouched (its customer's lock, taken for nothing, goes at commit).
  if (standing.decided.length > 0) {
    for (const row of standing.decided) decisions.set(row.id, { kind: 'decided', duplicate: true, booking: fromRow(row) });
    fresh = fresh.filter((request) => !decisions.has(request.id));
    if (fresh.length === 0) return decisions;
  }

  // 3. Specific seats: lock every label this batch asks for in one statement, in id order.
  const specificLabels = [...new Set(fresh.flatMap((request) => request.seats ?? []))];
  // A seat whose hold has lapsed is for sale again (listings already show it AVAILABLE), even
  // before the sweep reaches it: release the lapsed holds on these seats first, while this
  // transaction holds no seat lock, or the request would fail SEATS_UNAVAILABLE on a seat
  // nobody holds. Only these seats' holds: at most one per label, so the work is bounded.
  let freedSeats = false;
  if (specificLabels.length > 0) {
    const released = await releaseLapsedHolds(tx, { showId, seatLabels: specificLabels, limit: specificLabels.length });
    freedSeats = released.seats > 0;
  }
  const specificStarted = performance.now();
  const specific = new Map((await lockSeatsByLabel(tx, showId, specificLabels)).map((seat) => [seat.label, seat]));
  lockWait += specificLabels.length > 0 ? secondsSince(specificStarted) : 0;
  observer.lockWait?.(lockWait);

  // 3b. A show with a waiting list serves it first: its lapsed holds are released and every free
  //     seat a waiting entry fits is offered (shared/booking/waitlist.ts), under the list's lock,
  //     which this transaction then keeps. Only what fits no entry is left for new requests,
  //     and this claim does not release lapsed holds itself (they would skip the list). Whether
  //     there is a list was read in step 2, before the seat locks; a list that appears later is
  //     what step 6 is for, as it would be had it appeared just after this point.
  if (listed) await releaseLapsedHolds(tx, { showId, limit: CLAIM_RELEASE_LIMIT });
  const claimer = new Claimer(tx, showId, [...specific.values()].map((seat) => seat.id), { releaseLapsed: !listed });
  const waitlistSettings = { offerSeconds: settings.waitlistOfferSeconds };
  if (listed) await offerFreedSeats(tx, showId, waitlistSettings, claimer);
  // The best-available requests' seats: with groups among them, planned in line order and locked
  // in one statement; with single seats only, locked in one query per section at the first.
  const bestAvailable = fresh.filter((r) => !r.seats).map((r) => ({ key: r.id, rank: rankOf(layout, r.section), count: r.seat_count }));
  if (bestAvailable.some((r) => r.count > 1)) await claimer.planInOrder(bestAvailable);
  else claimer.planSingles(bestAvailable.map((r) => r.rank));

  // 4. Decide each request in arrival order.
  const verdicts = new Map<string, RequestVerdict>();
  for (const request of fresh) {
    const owned = seatsByCustomer.get(request.customer_email) ?? 0;
    let verdict: RequestVerdict;
    if (owned + request.seat_count > settings.maxSeatsPerCustomer) {
      verdict = { status: 'FAILED', reason: 'LIMIT_EXCEEDED' };
      claimer.forgo(request.id);
    } else if (request.seats) {
      verdict = claimer.takeSpecific(request.seats, specific);
    } else {
      verdict = await claimer.takeBestAvailable(rankOf(layout, request.section), request.seat_count, request.id);
    }
    if (verdict.status === 'HELD') seatsByCustomer.set(request.customer_email, owned + request.seat_count);
    verdicts.set(request.id, verdict);
  }

  // 5. Sold out, and asked for the waiting list: join it.
  await joinWaitlist(tx, showId, layout, fresh, verdicts, seatsByCustomer, claimer, settings);

  const written = await writeDecisions(tx, showId, fresh, verdicts, settings, decisions);
  // 6. This claim freed seats itself (lapsed holds) on a show it found without a list: a list may
  //    have appeared meanwhile, and what is left of those seats goes to it.
  if (!listed && (freedSeats || claimer.releasedLapsedHolds)) await offerFreedSeats(tx, showId, waitlistSettings);
  return written;
}

/**
 * Requests that asked for the waiting list and came out SOLD_OUT join it, unless the list is
 * closed (they stay SOLD_OUT) or the cap forbids it. Under the list's lock, the committed supply
 * is read again: a transaction that freed seats of the scope and committed before this one took
 * the lock offered them to the entries it could see, not to these; if such seats are still free
 * the request is CONTENDED (decided again, when it gets them) instead of waiting beside them.
 * A freeing transaction that commits later takes the lock after this one and sees these entries.
 */
async function joinWaitlist(
  tx: Executor,
  showId: string,
  layout: ShowLayout,
  fresh: BookingJob[],
  verdicts: Map<string, RequestVerdict>,
  seatsByCustomer: Map<string, number>,
  claimer: Claimer,
  settings: DecideSettings,
): Promise<void> {
  const joining = fresh.filter((request) => {
    const verdict = verdicts.get(request.id);
    return request.waitlist && !request.seats && verdict?.status === 'FAILED' && verdict.reason === 'SOLD_OUT';
  });
  if (joining.length === 0) return;
  await takeWaitlistLock(tx, showId);
  if (!(await waitlistOpen(tx, showId, { offerSeconds: settings.waitlistOfferSeconds }))) return;
  for (const request of joining) {
    const supply = await countClaimable(tx, showId, rankOf(layout, request.section), claimer.spokenFor());
    const owned = seatsByCustomer.get(request.customer_email) ?? 0;
    let verdict: RequestVerdict;
    if (supply.available >= request.seat_count || supply.lapsedHolds) verdict = { status: 'CONTENDED' };
    else if (owned + request.seat_count > settings.maxSeatsPerCustomer) verdict = { status: 'FAILED', reason: 'LIMIT_EXCEEDED' };
    else {
      verdict = { status: 'WAITLISTED' };
      seatsByCustomer.set(request.customer_email, owned + request.seat_count);
    }
    verdicts.set(request.id, verdict);
  }
}

/** The outbox event of each decision. */
const EVENT_OF = { HELD: 'booking.held', FAILED: 'booking.failed', WAITLISTED: 'booking.waitlisted' } as const;

/**
 * Writes the decided bookings, points their seats at them and records their outbox events, in
 * one statement. Requests left CONTENDED are not written: they are decided again.
 */
async function writeDecisions(
  tx: Executor,
  showId: string,
  fresh: BookingJob[],
  verdicts: Map<string, RequestVerdict>,
  settings: DecideSettings,
  decisions: Map<string, Decision>,
): Promise<Map<string, Decision>> {
  const decided = fresh.filter((request) => verdicts.get(request.id)?.status !== 'CONTENDED');
  const rows = decided.map((request): DecisionRow => {
    const verdict = verdicts.get(request.id) as Exclude<RequestVerdict, { status: 'CONTENDED' }>;
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
    // The bookings, their seats and their events in one statement (sql/decisions.ts).
    const events = { types: rows.map((row) => EVENT_OF[row.status]), bookingIds: rows.map((row) => row.id) };
    const inserted = await executePrepared<ExistingRow & { seats_held: number }>(tx, writeDecisionsSql(showId, rows, settings.holdSeconds, events));
    // Another worker decided one of these ids between our check and our insert (a duplicate
    // delivery running in parallel). Roll back everything and let the caller redo the batch.
    if (inserted.rows.length !== rows.length) throw new ConcurrentDecisionError('booking decided concurrently');
    for (const row of inserted.rows) decisions.set(row.id, { kind: 'decided', duplicate: false, booking: fromRow(row) });
    // Every seat was locked and seen AVAILABLE by this transaction; anything else is a bug,
    // and committing would leave a booking pointing at seats it does not hold.
    const given = rows.reduce((sum, row) => sum + row.seat_ids.length, 0);
    if (inserted.rows[0]!.seats_held !== given) throw new Error('claimed seats changed under their locks');
  }
  for (const request of fresh) {
    if (verdicts.get(request.id)?.status === 'CONTENDED') decisions.set(request.id, { kind: 'contended' });
  }
  return decisions;
}

/** `claimStanding`'s one row, read: the customers' live seats, the waiting list, the earlier decisions asked for. */
async function readClaimStanding(
  tx: Executor,
  showId: string,
  emails: string[],
  decidedIds: string[],
): Promise<{ seatsByCustomer: Map<string, number>; listed: boolean; decided: ExistingRow[] }> {
  type Row = { waiting: boolean; live: Record<string, number>; decided: ExistingRow[] };
  const row = (await tx.execute<Row>(claimStanding(showId, emails, decidedIds))).rows[0]!;
  return { seatsByCustomer: new Map(Object.entries(row.live)), listed: row.waiting, decided: row.decided };
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
