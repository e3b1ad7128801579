import type { Executor } from '../db/client.js';
import { releaseLapsedHolds } from './expire.js';
import type { ShowLayout } from './layout.js';
import { CLAIM_RELEASE_LIMIT } from './sql/holds.js';
import {
  claimableSeats,
  firstAvailableSeatsForUpdate,
  freeSeatsInOrder,
  seatsByLabelForUpdate,
  seatsIfFreeForUpdate,
  type SectionFilter,
} from './sql/seats.js';
import type { FailureReason } from './statuses.js';

/**
 * Claiming seats inside a claim transaction: the statements of sql/seats.ts as typed calls,
 * and the Claimer, which hands out seats to the requests of one batch (best available, adjacent
 * when it can, or specific seats) and decides when a shortfall really is "sold out".
 */

export type { SectionFilter };
export type ClaimedSeat = { id: number; label: string };
export type LockedSeat = ClaimedSeat & { status: string };
export type FreeSeat = ClaimedSeat & { section_rank: number; row: number; number: number };

/** What a claim decided for one request; CONTENDED means "seats exist but are locked: try again". */
export type Verdict =
  | { status: 'HELD'; seats: ClaimedSeat[] }
  | { status: 'FAILED'; reason: FailureReason }
  | { status: 'CONTENDED' };

export async function lockSeatsByLabel(tx: Executor, showId: string, labels: string[]): Promise<LockedSeat[]> {
  if (labels.length === 0) return [];
  return (await tx.execute<LockedSeat>(seatsByLabelForUpdate(showId, labels))).rows;
}

export async function lockFirstAvailable(tx: Executor, showId: string, rank: SectionFilter, limit: number, exclude: number[]): Promise<ClaimedSeat[]> {
  return (await tx.execute<ClaimedSeat>(firstAvailableSeatsForUpdate(showId, rank, limit, exclude))).rows;
}

export async function listFreeSeats(tx: Executor, showId: string, rank: SectionFilter): Promise<FreeSeat[]> {
  return (await tx.execute<FreeSeat>(freeSeatsInOrder(showId, rank))).rows;
}

export async function lockSeatsIfFree(tx: Executor, ids: number[]): Promise<ClaimedSeat[]> {
  return (await tx.execute<ClaimedSeat>(seatsIfFreeForUpdate(ids))).rows;
}

export async function countClaimable(
  tx: Executor,
  showId: string,
  rank: SectionFilter,
  exclude: number[],
): Promise<{ available: number; lapsedHolds: boolean }> {
  const row = (await tx.execute<{ available: number; lapsed: boolean }>(claimableSeats(showId, rank, exclude))).rows[0];
  return { available: row?.available ?? 0, lapsedHolds: row?.lapsed ?? false };
}

/** The first `count` adjacent seats in one row of an ordered free list, skipping excluded ones. */
export function firstAdjacentRun(free: FreeSeat[], count: number, excluded: (id: number) => boolean): FreeSeat[] | null {
  let start = 0;
  for (let i = 0; i < free.length; i++) {
    const seat = free[i]!;
    if (excluded(seat.id)) {
      start = i + 1;
      continue;
    }
    const last = i > start ? free[i - 1]! : undefined;
    const adjacent = last && last.section_rank === seat.section_rank && last.row === seat.row && last.number + 1 === seat.number;
    if (!adjacent) start = i;
    if (i - start + 1 === count) return free.slice(start, i + 1);
  }
  return null;
}

/** What a best-available request of `count` seats gets from an ordered free list: one seat, a run, else the first seats in order. */
function bestSeats(free: FreeSeat[], count: number, excluded: (id: number) => boolean): FreeSeat[] | null {
  if (count > 1) {
    const run = firstAdjacentRun(free, count, excluded);
    if (run) return run;
  }
  const seats: FreeSeat[] = [];
  for (const seat of free) {
    if (excluded(seat.id)) continue;
    seats.push(seat);
    if (seats.length === count) return seats;
  }
  return null;
}

/**
 * Runs of adjacent seats a claim tries before settling for scattered seats. The free list
 * cannot see row locks, so under a burst the best runs are often being claimed by other
 * transactions; with only a few tries a group would be split across rows while whole runs
 * were free further back. A failed try costs one index probe.
 */
export const RUN_CANDIDATES = 20;

/** A request's section name as the seat index's rank; null means any section, best first. */
export function rankOf(layout: ShowLayout, section: string | null): SectionFilter {
  if (section === null) return null;
  const found = layout.sections.find((candidate) => candidate.name === section);
  // The API validated the section against the same immutable layout.
  if (!found) throw new Error(`section ${section} not in show layout`);
  return found.rank;
}

/** Hands out seats within one transaction, remembering what it has already spoken for. */
export class Claimer {
  /** Seat ids assigned to a request of this batch, or locked for one (specific or planned singles). */
  private readonly reserved: Set<number>;
  /** Seat ids given to a request of this batch. */
  private readonly assigned = new Set<number>();
  private readonly singlePools = new Map<SectionFilter, ClaimedSeat[]>();
  private singleDemand = new Map<SectionFilter, number>();
  /** Seats locked whole for a request of the batch by `planInOrder` (by its key), not yet handed out. */
  private readonly planned = new Map<string, ClaimedSeat[]>();
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

  /**
   * `releaseLapsed: false` when the show has a waiting list: seats of lapsed holds must go to
   * the list first, so this claim answers CONTENDED for them instead of releasing them itself
   * (the claim released them for the list before it started; shared/booking/decide.ts).
   */
  constructor(
    private readonly tx: Executor,
    private readonly showId: string,
    specificIds: number[],
    private readonly options: { releaseLapsed?: boolean } = {},
  ) {
    this.reserved = new Set(specificIds);
  }

  /** Whether this claim released lapsed holds itself: it freed seats, and must offer them to the waiting list. */
  get releasedLapsedHolds(): boolean {
    return this.releasedLapsed;
  }

  /** Seat ids given to requests of this transaction so far. */
  spokenFor(): number[] {
    return [...this.assigned];
  }

  /** Single-seat requests are the hot path: their seats are locked in one query per section. */
  planSingles(ranks: SectionFilter[]): void {
    for (const rank of ranks) this.singleDemand.set(rank, (this.singleDemand.get(rank) ?? 0) + 1);
  }

  /**
   * For a batch with multi-seat requests: the best-available requests' seats, planned in line
   * order on the sections' free lists (each gets what the one-by-one search would give it if no
   * seat were taken meanwhile: the first free seat, the first run of adjacent seats, else the
   * first seats in order), then every planned seat locked in one statement. Without it, each
   * group costs at least one round trip inside the transaction, and a show's transactions run
   * one after another. The requests planned and locked whole keep their seats
   * (`takeBestAvailable` with their key). A request the lists have no seats for is left to the
   * one-by-one search (lapsed holds, or sold out). From the first request whose seats did not
   * all lock (another transaction took one since the lists were read), the rest are claimed one
   * by one too, and the seats planned for them are free for that search: this transaction still
   * holds their locks, and the line's order holds.
   */
  async planInOrder(requests: { key: string; rank: SectionFilter; count: number }[]): Promise<void> {
    const chosen = new Set<number>();
    const plans: { key: string; seats: FreeSeat[] }[] = [];
    const excluded = (id: number) => this.reserved.has(id) || this.unavailable.has(id) || chosen.has(id);
    for (const { key, rank, count } of requests) {
      // None left for it in the lists: the one-by-one search decides it (lapsed holds, sold out).
      const seats = bestSeats(await this.freeList(rank), count, excluded);
      if (!seats) continue;
      for (const seat of seats) chosen.add(seat.id);
      plans.push({ key, seats });
    }
    const locked = chosen.size > 0 ? new Set((await lockSeatsIfFree(this.tx, [...chosen])).map((seat) => seat.id)) : new Set<number>();
    for (const { key, seats } of plans) {
      if (!seats.every((seat) => locked.has(seat.id))) {
        for (const seat of seats) if (!locked.has(seat.id)) this.unavailable.add(seat.id);
        break;
      }
      for (const seat of seats) this.reserved.add(seat.id);
      this.planned.set(key, seats.map(({ id, label }) => ({ id, label })));
    }
    this.planSingles(requests.filter((request) => request.count === 1 && !this.planned.has(request.key)).map((request) => request.rank));
  }

  takeSpecific(labels: string[], locked: Map<string, LockedSeat>): Verdict {
    const seats = labels.map((label) => locked.get(label));
    const free = seats.every((seat) => seat && seat.status === 'AVAILABLE' && !this.assigned.has(seat.id));
    if (!free) return { status: 'FAILED', reason: 'SEATS_UNAVAILABLE' };
    const claimed = seats as ClaimedSeat[];
    for (const seat of claimed) this.assigned.add(seat.id);
    return { status: 'HELD', seats: claimed.map(({ id, label }) => ({ id, label })) };
  }

  /**
   * A planned request that takes no seats (its customer is over the cap): its seats, still
   * locked by this transaction, are left for the batch's one-by-one search.
   */
  forgo(key: string): void {
    for (const seat of this.planned.get(key) ?? []) this.reserved.delete(seat.id);
    this.planned.delete(key);
  }

  /** `key`: the request's key in `planInOrder`, if the batch was planned. */
  async takeBestAvailable(rank: SectionFilter, count: number, key?: string): Promise<Verdict> {
    const planned = key === undefined ? undefined : this.planned.get(key);
    if (planned) {
      this.planned.delete(key!);
      for (const seat of planned) this.assigned.add(seat.id);
      return { status: 'HELD', seats: planned };
    }
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
        if (!this.releasedLapsed && this.options.releaseLapsed !== false) {
          // Holds have lapsed but the sweep has not reached them yet: release them now, then retry.
          this.releasedLapsed = true;
          await releaseLapsedHolds(this.tx, { showId: this.showId, limit: CLAIM_RELEASE_LIMIT });
          this.forgetSupply();
          continue;
        }
        // Lapsed holds remain: more than one release's worth, or locked by another transaction
        // (a sweep, a confirm expiring them, another claim) releasing them right now. Their
        // seats are not gone, so this is not sold out yet.
        return { status: 'CONTENDED' };
      }
      this.verifiedAvailable.set(rank, claimable.available);
      return { status: 'FAILED', reason: 'SOLD_OUT' };
    }
  }

  /** After releasing lapsed holds, what the batch knew about free seats is out of date. */
  private forgetSupply(): void {
    this.singlePools.clear();
    this.freeSeats.clear();
    this.unavailable.clear();
    this.exhaustedPools.clear();
    this.verifiedAvailable.clear();
    this.contended.clear();
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
    // What was locked stays locked until commit, and free for the batch's later requests.
    return null;
  }

  /**
   * `count` adjacent seats in one row: the best runs of the batch's free list are tried in seat
   * order, each locked whole or not at all (a seat another transaction took meanwhile is
   * remembered and the search moves on).
   */
  private async takeAdjacent(rank: SectionFilter, count: number): Promise<ClaimedSeat[] | null> {
    const free = await this.freeList(rank);
    const excluded = (id: number) => this.reserved.has(id) || this.unavailable.has(id);
    for (let attempt = 0; attempt < RUN_CANDIDATES; attempt++) {
      const run = firstAdjacentRun(free, count, excluded);
      if (!run) return null;
      const locked = await lockSeatsIfFree(this.tx, run.map((seat) => seat.id));
      if (locked.length === count) return locked;
      const got = new Set(locked.map((seat) => seat.id));
      for (const seat of run) {
        // A seat locked but not used stays free for the batch's later requests.
        if (!got.has(seat.id)) this.unavailable.add(seat.id);
      }
    }
    return null;
  }

  /** The section's AVAILABLE seats as this batch first read them. */
  private async freeList(rank: SectionFilter): Promise<FreeSeat[]> {
    let free = this.freeSeats.get(rank);
    if (!free) {
      free = await listFreeSeats(this.tx, this.showId, rank);
      this.freeSeats.set(rank, free);
    }
    return free;
  }
}
