import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { sql } from 'drizzle-orm';
import { describe, expect, it } from 'vitest';
import { decideBookings, type Decision } from '../shared/booking/decide.js';
import { releaseLapsedHolds } from '../shared/booking/expire.js';
import type { ShowLayout } from '../shared/booking/layout.js';
import { cancelBooking, confirmBooking, type SettleOutcome } from '../shared/booking/settle.js';
import { createShow, loadLayout } from '../shared/booking/shows.js';
import type { BookingJob } from '../shared/queue/catalog.js';
import { openTestContext } from './support/context.js';
import { recordFigures } from './support/figures.js';

/**
 * Property-based test of the booking state machine against the real database: random
 * interleavings of submit, claim (decide a batch), duplicate delivery, confirm, pay-fail,
 * cancel, lapse (a hold's expiry forced into the past) and sweep, run through the domain
 * functions the worker and the API use, checked after every step against a small in-memory
 * model. No reachable state oversells, loses a seat, or confirms a lapsed hold.
 */

const CAP = 4;
const CUSTOMERS = ['ada@example.com', 'bob@example.com', 'cy@example.com'];
const SECTIONS = [
  { name: 'A', rows: 1, seats_per_row: 3 },
  { name: 'B', rows: 2, seats_per_row: 3 },
];
const NUM_RUNS = Number(process.env.STATE_MACHINE_RUNS ?? 100);

const ctx = await openTestContext();

// ---------------------------------------------------------------------------------------------
// Model

type Status = 'HELD' | 'CONFIRMED' | 'FAILED' | 'EXPIRED' | 'CANCELLED';
type Seat = { id: number; label: string; rank: number };
type Booking = { job: BookingJob; status: Status; seats: number[]; lapsed: boolean; reason: string | null };
type Model = {
  seats: Seat[];
  /** Submitted, not yet decided (in the queue), in arrival order. */
  pending: BookingJob[];
  bookings: Map<string, Booking>;
  /** The seat's owner: a HELD or CONFIRMED booking id. */
  owner: Map<number, string>;
};
type Real = { showId: string; layout: ShowLayout };

const stats = { runs: 0, commands: 0, byCommand: {} as Record<string, number>, outcomes: {} as Record<string, number> };
const count = (name: string, table: Record<string, number>) => (table[name] = (table[name] ?? 0) + 1);
const executed = (name: string) => {
  stats.commands += 1;
  count(name, stats.byCommand);
};

let clock = Date.parse('2030-01-01T00:00:00Z');
const nextAcceptedAt = () => new Date((clock += 1_000)).toISOString();

const live = (booking: Booking) => booking.status === 'HELD' || booking.status === 'CONFIRMED';
const liveSeatsOf = (model: Model, email: string) =>
  [...model.bookings.values()]
    .filter((booking) => booking.job.customer_email === email && (booking.status === 'CONFIRMED' || (booking.status === 'HELD' && !booking.lapsed)))
    .reduce((sum, booking) => sum + booking.seats.length, 0);

function free(model: Model, bookingId: string): void {
  const booking = model.bookings.get(bookingId)!;
  for (const seat of booking.seats) if (model.owner.get(seat) === bookingId) model.owner.delete(seat);
}

function expireLapsed(model: Model, only?: ReadonlySet<string>): number {
  let expired = 0;
  for (const [id, booking] of model.bookings) {
    if (booking.status === 'HELD' && booking.lapsed && (!only || only.has(id))) {
      booking.status = 'EXPIRED';
      free(model, id);
      expired += 1;
    }
  }
  return expired;
}

/** A seat a request may take: nobody owns it, or its owner's hold has lapsed. */
function claimable(model: Model, seatId: number): boolean {
  const owner = model.owner.get(seatId);
  if (!owner) return true;
  const booking = model.bookings.get(owner)!;
  return booking.status === 'HELD' && booking.lapsed;
}

// ---------------------------------------------------------------------------------------------
// Checks: the database against the model, and invariants that hold whatever the model says

async function checkAgainstModel(model: Model, real: Real): Promise<void> {
  const seats = await ctx.pool.query<{ id: number; status: string; booking_id: string | null }>(
    'SELECT id, status, booking_id FROM seats WHERE show_id = $1 ORDER BY id',
    [real.showId],
  );
  for (const seat of seats.rows) {
    const owner = model.owner.get(seat.id) ?? null;
    const expected = owner ? (model.bookings.get(owner)!.status === 'CONFIRMED' ? 'BOOKED' : 'HELD') : 'AVAILABLE';
    expect({ seat: seat.id, status: seat.status, booking: seat.booking_id }).toEqual({ seat: seat.id, status: expected, booking: owner });
  }
  const rows = await ctx.pool.query<{ id: string; status: string; failure_reason: string | null; seat_ids: number[] }>(
    'SELECT id, status, failure_reason, seat_ids FROM bookings WHERE show_id = $1',
    [real.showId],
  );
  expect(rows.rows.length).toBe(model.bookings.size);
  for (const row of rows.rows) {
    const booking = model.bookings.get(row.id);
    expect(booking, `booking ${row.id} not in the model`).toBeDefined();
    expect({ id: row.id, status: row.status, reason: row.failure_reason }).toEqual({ id: row.id, status: booking!.status, reason: booking!.reason });
    if (live(booking!)) expect(row.seat_ids).toEqual(booking!.seats);
  }

  // Model-free invariants: no seat oversold or lost, status and ownership agree.
  const invariants = await ctx.pool.query<{ double_sold: number; orphans: number; unlinked: number; confirmed_lapsed: number }>(
    `SELECT
       (SELECT count(*)::int FROM (SELECT seat_id FROM bookings b, unnest(b.seat_ids) AS seat_id
          WHERE b.show_id = $1 AND b.status IN ('HELD', 'CONFIRMED') GROUP BY seat_id HAVING count(*) > 1) d) AS double_sold,
       (SELECT count(*)::int FROM seats s LEFT JOIN bookings b ON b.id = s.booking_id
          WHERE s.show_id = $1 AND s.status <> 'AVAILABLE'
            AND (b.id IS NULL OR NOT (s.id = ANY(b.seat_ids))
                 OR NOT ((s.status = 'HELD' AND b.status = 'HELD') OR (s.status = 'BOOKED' AND b.status = 'CONFIRMED')))) AS orphans,
       (SELECT count(*)::int FROM bookings b, unnest(b.seat_ids) AS seat_id JOIN seats s ON s.id = seat_id
          WHERE b.show_id = $1 AND b.status IN ('HELD', 'CONFIRMED') AND s.booking_id IS DISTINCT FROM b.id) AS unlinked,
       (SELECT count(*)::int FROM bookings
          WHERE show_id = $1 AND status = 'CONFIRMED' AND confirmed_at > hold_expires_at) AS confirmed_lapsed`,
    [real.showId],
  );
  expect(invariants.rows[0]).toEqual({ double_sold: 0, orphans: 0, unlinked: 0, confirmed_lapsed: 0 });
}

// ---------------------------------------------------------------------------------------------
// Commands

type Cmd = fc.AsyncCommand<Model, Real>;

class Submit implements Cmd {
  constructor(
    readonly customer: number,
    readonly request: { count: number; section: string | null } | { labels: number[] },
  ) {}
  check = () => true;
  async run(model: Model, real: Real): Promise<void> {
    executed('submit');
    const job: BookingJob = {
      id: randomUUID(),
      show_id: real.showId,
      customer_email: CUSTOMERS[this.customer]!,
      seat_count: 'count' in this.request ? this.request.count : this.request.labels.length,
      section: 'count' in this.request ? this.request.section : null,
      seats: 'labels' in this.request ? this.request.labels.map((index) => model.seats[index % model.seats.length]!.label) : null,
      accepted_at: nextAcceptedAt(),
      idempotency_key: null,
      request_id: 'state-machine',
    };
    if (job.seats) job.seats = [...new Set(job.seats)];
    job.seat_count = job.seats?.length ?? job.seat_count;
    model.pending.push(job);
    // A queued request lives only in Redis: nothing in Postgres yet.
    await checkAgainstModel(model, real);
  }
  toString = () => `submit(${this.customer}, ${JSON.stringify(this.request)})`;
}

class Claim implements Cmd {
  constructor(readonly size: number) {}
  check = (model: Readonly<Model>) => model.pending.length > 0;
  async run(model: Model, real: Real): Promise<void> {
    executed('claim');
    const batch = model.pending.slice(0, this.size);
    const decisions = await decideBookings(ctx.db, real.layout, batch, { holdSeconds: 3_600, maxSeatsPerCustomer: CAP, waitlistOfferSeconds: 900 });
    // Lapsed holds the claim released (it may, to find seats: those on the specific seats it
    // asks for, or, when it comes up short, the show's up to a bound): only lapsed ones.
    const statuses = await ctx.pool.query<{ id: string; status: string }>('SELECT id, status FROM bookings WHERE show_id = $1', [real.showId]);
    const expiredNow = statuses.rows.filter((row) => row.status === 'EXPIRED' && model.bookings.get(row.id)?.status === 'HELD');
    const lapsedBefore = new Set([...model.bookings.entries()].filter(([, booking]) => booking.status === 'HELD' && booking.lapsed).map(([id]) => id));
    for (const row of expiredNow) expect(lapsedBefore.has(row.id), `claim expired live hold ${row.id}`).toBe(true);
    // What was claimable before the claim (lapsed seats included: they are for sale again).
    const taken = new Set<number>();
    const batchLive = new Map<string, number>();
    const ordered = [...batch].sort((a, b) => a.accepted_at.localeCompare(b.accepted_at));
    const outcomes: Array<[BookingJob, Decision]> = [];
    for (const job of ordered) {
      const decision = decisions.get(job.id);
      expect(decision, `no decision for ${job.id}`).toBeDefined();
      outcomes.push([job, decision!]);
      if (decision!.kind === 'contended') {
        count('CONTENDED', stats.outcomes);
        continue;
      }
      const booking = decision!.booking;
      count(booking.status === 'FAILED' ? booking.reason! : booking.status, stats.outcomes);
      const owned = liveSeatsOf(model, job.customer_email) + (batchLive.get(job.customer_email) ?? 0);
      const overCap = owned + job.seat_count > CAP;
      const seatIds = booking.seats.map((label) => model.seats.find((seat) => seat.label === label)!.id);
      const available = (seatId: number) => claimable(model, seatId) && !taken.has(seatId);
      if (overCap) {
        expect(booking).toMatchObject({ status: 'FAILED', reason: 'LIMIT_EXCEEDED' });
      } else if (job.seats) {
        const wanted = job.seats.map((label) => model.seats.find((seat) => seat.label === label)!.id);
        if (wanted.every(available)) expect({ status: booking.status, seats: booking.seats }).toEqual({ status: 'HELD', seats: job.seats });
        else expect(booking).toMatchObject({ status: 'FAILED', reason: 'SEATS_UNAVAILABLE' });
      } else {
        const rank = job.section === null ? null : SECTIONS.findIndex((section) => section.name === job.section);
        const inSection = model.seats.filter((seat) => (rank === null || seat.rank === rank) && available(seat.id));
        if (booking.status === 'HELD') {
          expect(new Set(seatIds).size).toBe(job.seat_count);
          for (const seatId of seatIds) expect(inSection.map((seat) => seat.id)).toContain(seatId);
        } else {
          // Sold out only when the seats really are gone, lapsed holds counted as free.
          expect(booking).toMatchObject({ status: 'FAILED', reason: 'SOLD_OUT' });
          expect(inSection.length).toBeLessThan(job.seat_count);
        }
      }
      if (booking.status === 'HELD') {
        for (const seatId of seatIds) taken.add(seatId);
        batchLive.set(job.customer_email, (batchLive.get(job.customer_email) ?? 0) + job.seat_count);
      }
    }
    // Apply: released lapsed holds, then the new bookings.
    if (expiredNow.length > 0) expireLapsed(model, new Set(expiredNow.map((row) => row.id)));
    for (const [job, decision] of outcomes) {
      if (decision.kind === 'contended') continue;
      const booking = decision.booking;
      model.pending = model.pending.filter((pending) => pending.id !== job.id);
      const seatIds = booking.seats.map((label) => model.seats.find((seat) => seat.label === label)!.id);
      model.bookings.set(job.id, { job, status: booking.status as Status, seats: seatIds, lapsed: false, reason: booking.reason });
      if (booking.status === 'HELD') for (const seatId of seatIds) model.owner.set(seatId, job.id);
    }
    await checkAgainstModel(model, real);
  }
  toString = () => `claim(${this.size})`;
}

/** At-least-once delivery: a decided request delivered again changes nothing. */
class Redeliver implements Cmd {
  constructor(readonly pick: number) {}
  check = (model: Readonly<Model>) => model.bookings.size > 0;
  async run(model: Model, real: Real): Promise<void> {
    executed('redeliver');
    const [id, booking] = [...model.bookings.entries()][this.pick % model.bookings.size]!;
    const decisions = await decideBookings(ctx.db, real.layout, [booking.job], { holdSeconds: 3_600, maxSeatsPerCustomer: CAP, waitlistOfferSeconds: 900 });
    expect(decisions.get(id)).toMatchObject({ kind: 'decided', duplicate: true, booking: { status: booking.status } });
    count('duplicate', stats.outcomes);
    await checkAgainstModel(model, real);
  }
  toString = () => `redeliver(${this.pick})`;
}

class Settle implements Cmd {
  constructor(
    readonly action: 'confirm' | 'pay-fail' | 'cancel',
    readonly pick: number,
    /** 'any': a decided, queued or unknown id; 'held': a HELD booking, lapsed or not. */
    readonly target: 'any' | 'held',
  ) {}
  check = (model: Readonly<Model>) => this.target === 'any' || [...model.bookings.values()].some((booking) => booking.status === 'HELD');
  async run(model: Model, real: Real): Promise<void> {
    executed(this.action);
    const ids =
      this.target === 'held'
        ? [...model.bookings.entries()].filter(([, booking]) => booking.status === 'HELD').map(([id]) => id)
        : [...model.bookings.keys(), ...model.pending.map((job) => job.id), randomUUID()];
    const id = ids[this.pick % ids.length]!;
    const booking = model.bookings.get(id);
    const outcome: SettleOutcome =
      this.action === 'cancel' ? await cancelBooking(ctx.db, id, { offerSeconds: 900 }) : await confirmBooking(ctx.db, id, this.action === 'confirm', { offerSeconds: 900 });
    count(`${this.action}:${outcome.kind}`, stats.outcomes);
    if (!booking) {
      expect(outcome.kind).toBe('not_found');
    } else if (booking.status === 'HELD' && booking.lapsed) {
      // A lapsed hold is never confirmed (nor cancelled): it expires on the spot.
      expect(outcome).toMatchObject({ kind: 'rejected', booking: { status: 'EXPIRED' } });
      count(`${this.action}:lapsed-refused`, stats.outcomes);
      booking.status = 'EXPIRED';
      free(model, id);
    } else if (booking.status === 'HELD') {
      expect(outcome.kind).toBe('ok');
      if (this.action === 'confirm') booking.status = 'CONFIRMED';
      else {
        booking.status = this.action === 'cancel' ? 'CANCELLED' : 'FAILED';
        booking.reason = this.action === 'cancel' ? null : 'PAYMENT_FAILED';
        free(model, id);
      }
    } else if (booking.status === 'CONFIRMED' && this.action !== 'cancel') {
      expect(outcome).toMatchObject({ kind: 'ok', booking: { status: 'CONFIRMED' } });
    } else {
      expect(outcome).toMatchObject({ kind: 'rejected', booking: { status: booking.status } });
    }
    await checkAgainstModel(model, real);
  }
  toString = () => `${this.action}(${this.target} ${this.pick})`;
}

/** Time passes for one hold: its expiry is moved into the past (the sweep has not run yet). */
class Lapse implements Cmd {
  constructor(readonly pick: number) {}
  check = (model: Readonly<Model>) => [...model.bookings.values()].some((booking) => booking.status === 'HELD' && !booking.lapsed);
  async run(model: Model, real: Real): Promise<void> {
    executed('lapse');
    const held = [...model.bookings.entries()].filter(([, booking]) => booking.status === 'HELD' && !booking.lapsed);
    const [id, booking] = held[this.pick % held.length]!;
    await ctx.db.transaction(async (tx) => {
      await tx.execute(sql`UPDATE bookings SET hold_expires_at = now() - interval '1 second' WHERE id = ${id}`);
      await tx.execute(sql`UPDATE seats SET hold_expires_at = now() - interval '1 second' WHERE booking_id = ${id}`);
    });
    booking.lapsed = true;
    await checkAgainstModel(model, real);
  }
  toString = () => `lapse(${this.pick})`;
}

class Sweep implements Cmd {
  check = () => true;
  async run(model: Model, real: Real): Promise<void> {
    executed('sweep');
    const lapsedSeats = [...model.bookings.values()].filter((booking) => booking.status === 'HELD' && booking.lapsed).reduce((sum, booking) => sum + booking.seats.length, 0);
    const released = await ctx.db.transaction((tx) => releaseLapsedHolds(tx, { showId: real.showId, limit: 1_000 }));
    const expired = expireLapsed(model);
    expect({ bookings: released.bookings, seats: released.seats }).toEqual({ bookings: expired, seats: lapsedSeats });
    // Which holds, for live updates: each released one, with its seats.
    expect(released.holds).toHaveLength(expired);
    expect(released.holds.reduce((sum, hold) => sum + hold.seats.length, 0)).toBe(lapsedSeats);
    count(`sweep:${expired}`, stats.outcomes);
    await checkAgainstModel(model, real);
  }
  toString = () => 'sweep';
}

const seatCount = SECTIONS.reduce((sum, section) => sum + section.rows * section.seats_per_row, 0);
const submit = fc
    .tuple(
      fc.integer({ min: 0, max: CUSTOMERS.length - 1 }),
      fc.oneof(
        fc.record({ count: fc.integer({ min: 1, max: 5 }), section: fc.constantFrom(null, 'A', 'B') }),
        fc.record({ labels: fc.array(fc.integer({ min: 0, max: seatCount - 1 }), { minLength: 1, maxLength: 3 }) }),
      ),
    )
    .map(([customer, request]) => new Submit(customer, request));
const claim = fc.integer({ min: 1, max: 4 }).map((size) => new Claim(size));
/** Submissions and claims drive everything else, so they come up more often. */
const commands = [
  submit,
  submit,
  submit,
  claim,
  claim,
  fc.nat().map((pick) => new Redeliver(pick)),
  fc
    .tuple(fc.constantFrom('confirm' as const, 'pay-fail' as const, 'cancel' as const), fc.nat(), fc.constantFrom('any' as const, 'held' as const))
    .map(([action, pick, target]) => new Settle(action, pick, target)),
  fc.nat().map((pick) => new Lapse(pick)),
  fc.constant(new Sweep()),
];

describe('booking state machine (property-based, real database)', () => {
  it('no interleaving oversells, loses a seat, or confirms a lapsed hold', async () => {
    await fc.assert(
      fc.asyncProperty(fc.commands(commands, { maxCommands: 40, size: 'max' }), async (cmds) => {
        const show = await createShow(ctx.db, {
          name: 'State machine',
          startTime: new Date('2031-01-01T20:00:00Z'),
          layout: {
            seating: 'reserved',
            sections: SECTIONS.map((section, rank) => ({ name: section.name, rank, rows: section.rows, seatsPerRow: section.seats_per_row, priceCents: 100 })),
          },
        });
        const layout = (await loadLayout(ctx.db, show.id))!;
        const seats = await ctx.pool.query<{ id: number; label: string; section_rank: number }>(
          'SELECT id, label, section_rank FROM seats WHERE show_id = $1 ORDER BY section_rank, row, number',
          [show.id],
        );
        const model: Model = {
          seats: seats.rows.map((row) => ({ id: row.id, label: row.label, rank: row.section_rank })),
          pending: [],
          bookings: new Map(),
          owner: new Map(),
        };
        stats.runs += 1;
        await fc.asyncModelRun(() => ({ model, real: { showId: show.id, layout } }), cmds);
      }),
      { numRuns: NUM_RUNS },
    );
    recordFigures('state-machine', stats);
  }, 180_000);
});
