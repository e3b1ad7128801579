import { randomUUID } from 'node:crypto';
import { QueueEvents } from 'bullmq';
import fc from 'fast-check';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { ConcurrentDecisionError, decideBookings, type DecideSettings, type Decision } from '../shared/booking/decide.js';
import { rowName } from '../shared/booking/layout.js';
import { LayoutCache, loadLayout } from '../shared/booking/shows.js';
import { createDb, type Database } from '../shared/db/client.js';
import { createLogger } from '../shared/logger.js';
import { JOBS, QUEUES, type BookingJob, type BookingResult } from '../shared/queue/catalog.js';
import { RequestIndex } from '../shared/queue/request-index.js';
import { createBookingProcessor } from '../services/worker/jobs/process-bookings.js';
import type { RunningWorker } from '../services/worker/worker.js';
import { openIntakeTest } from './support/context.js';
import { countingDb } from './support/statements.js';
import { waitFor } from './support/wait.js';
import { call, createShow } from './support/http.js';

/**
 * The worker's correctness under concurrency, against real Postgres and Redis: several
 * BullMQ workers (each its own pool and connection, as separate processes would have) deciding
 * bursts submitted through the API, then an audit of the tables. Each test states the
 * invariant it checks; the audit is the same for all of them.
 */

// Small pools: several test files run at once against one Postgres (max_connections 100).
const { ctx, api, queue } = await openIntakeTest({ HOLD_SECONDS: '600', DB_POOL_SIZE: '3' });

// ---------------------------------------------------------------------------------------------
// Harness

type Fleet = { workers: RunningWorker[]; failures: string[] };
let fleet: Fleet | undefined;

/** Starts workers with per-worker overrides; records every failed attempt (transient or not). */
async function startFleet(...overrides: Array<Record<string, string>>): Promise<Fleet> {
  const workers = await Promise.all(overrides.map((more) => ctx.startWorker(more)));
  const failures: string[] = [];
  for (const worker of workers) {
    worker.bookingWorker.on('failed', (job, error) => failures.push(`${job?.id ?? '?'}: ${error.message}`));
  }
  fleet = { workers, failures };
  return fleet;
}

// Each test gets its own workers and settings; none outlives its test.
afterEach(async () => {
  await Promise.all(fleet?.workers.map((worker) => worker.close()) ?? []);
  fleet = undefined;
});

type BookingBody = { show_id: string; customer_email: string; seat_count?: number; section?: string; seats?: string[] };

async function submit(body: BookingBody): Promise<string> {
  const reply = await call(api.app, 'POST', '/booking', { body });
  if (reply.status !== 202) throw new Error(`POST /booking: ${reply.status} ${JSON.stringify(reply.body)}`);
  return reply.body.id as string;
}

/** Fires all requests at once, as a sales-open burst does. */
const submitAll = (bodies: BookingBody[]) => Promise.all(bodies.map(submit));

async function waitForDecided(ids: string[], timeoutMs?: number): Promise<void> {
  await waitFor(
    async () => {
      const { rows } = await ctx.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM bookings WHERE id = ANY($1::uuid[])', [ids]);
      return rows[0]!.n === ids.length ? true : undefined;
    },
    `${ids.length} decisions`,
    timeoutMs,
  );
}

type SeatRow = {
  id: number;
  label: string;
  section: string;
  row: number;
  number: number;
  status: 'AVAILABLE' | 'HELD' | 'BOOKED';
  booking_id: string | null;
};
type BookingRow = {
  id: string;
  customer_email: string;
  seat_count: number;
  requested_section: string | null;
  requested_seats: string[] | null;
  status: string;
  failure_reason: string | null;
  seat_ids: number[];
  seat_labels: string[];
};
type Snapshot = { seats: SeatRow[]; bookings: BookingRow[]; seatById: Map<number, SeatRow>; bookingById: Map<string, BookingRow> };

async function snapshot(showId: string): Promise<Snapshot> {
  const seats = (
    await ctx.pool.query<SeatRow>(
      'SELECT id, label, section, row, number, status, booking_id FROM seats WHERE show_id = $1 ORDER BY section_rank, row, number',
      [showId],
    )
  ).rows;
  const bookings = (
    await ctx.pool.query<BookingRow>(
      `SELECT id, customer_email, seat_count, requested_section, requested_seats, status, failure_reason, seat_ids, seat_labels
       FROM bookings WHERE show_id = $1`,
      [showId],
    )
  ).rows;
  return {
    seats,
    bookings,
    seatById: new Map(seats.map((seat) => [seat.id, seat])),
    bookingById: new Map(bookings.map((booking) => [booking.id, booking])),
  };
}

/**
 * The audit every test ends with. Returns the problems found (empty when consistent):
 * - a live booking (HELD/CONFIRMED) lists exactly seat_count seats, each pointing back at it
 *   with the matching status, and labels matching its seat ids;
 * - no seat is listed by two live bookings;
 * - a taken seat points at a live booking that lists it; an AVAILABLE seat points at none;
 * - a decided-but-not-live booking holds no seat.
 */
function auditProblems(snap: Snapshot): string[] {
  const problems: string[] = [];
  const claimedBy = new Map<number, string>();
  for (const booking of snap.bookings) {
    const live = booking.status === 'HELD' || booking.status === 'CONFIRMED';
    if (!live) continue;
    if (booking.seat_ids.length !== booking.seat_count) problems.push(`${booking.id} lists ${booking.seat_ids.length} seats for ${booking.seat_count}`);
    booking.seat_ids.forEach((seatId, index) => {
      const other = claimedBy.get(seatId);
      if (other) problems.push(`seat ${seatId} listed by ${other} and ${booking.id}`);
      claimedBy.set(seatId, booking.id);
      const seat = snap.seatById.get(seatId);
      const expected = booking.status === 'HELD' ? 'HELD' : 'BOOKED';
      if (!seat) problems.push(`${booking.id} lists unknown seat ${seatId}`);
      else if (seat.booking_id !== booking.id || seat.status !== expected) {
        problems.push(`${booking.id} lists seat ${seat.label} which is ${seat.status} for ${seat.booking_id}`);
      } else if (booking.seat_labels[index] !== seat.label) problems.push(`${booking.id} label ${booking.seat_labels[index]} != ${seat.label}`);
    });
  }
  for (const seat of snap.seats) {
    if (seat.status === 'AVAILABLE') {
      if (seat.booking_id !== null) problems.push(`available seat ${seat.label} points at ${seat.booking_id}`);
    } else if (claimedBy.get(seat.id) !== seat.booking_id) {
      const owner = seat.booking_id ? snap.bookingById.get(seat.booking_id) : undefined;
      problems.push(`${seat.status} seat ${seat.label} points at ${seat.booking_id} (${owner?.status ?? 'missing'}) which does not list it`);
    }
  }
  return problems;
}

const held = (snap: Snapshot) => snap.bookings.filter((booking) => booking.status === 'HELD');
const failedWith = (snap: Snapshot, reason: string) => snap.bookings.filter((b) => b.status === 'FAILED' && b.failure_reason === reason);
const available = (snap: Snapshot, section?: string | null) =>
  snap.seats.filter((seat) => seat.status === 'AVAILABLE' && (section == null || seat.section === section)).length;

/** A small deterministic PRNG (mulberry32): the mixed workload is the same on every run. */
function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

// ---------------------------------------------------------------------------------------------

describe('a sales-open burst of single-seat requests', () => {
  // Group commit (large batches), one request per transaction (most row-lock contention
  // between processes), and small batches with low concurrency.
  const configurations = [
    { workers: 2, env: { WORKER_CONCURRENCY: '50', WORKER_BATCH_SIZE: '200' } },
    { workers: 3, env: { WORKER_CONCURRENCY: '50', WORKER_BATCH_SIZE: '1' } },
    { workers: 2, env: { WORKER_CONCURRENCY: '8', WORKER_BATCH_SIZE: '5' } },
  ];

  it.each(configurations)('1,000 requests for 200 seats, $workers workers, $env → 200 HELD, 800 SOLD_OUT', async ({ workers, env }) => {
    const show = await createShow(api.app, { total_seats: 200 });
    const { failures } = await startFleet(...Array.from({ length: workers }, () => env));

    const ids = await submitAll(
      Array.from({ length: 1_000 }, (_, i) => ({ show_id: show.id, customer_email: `fan-${i}@example.com`, seat_count: 1 })),
    );
    expect(new Set(ids).size).toBe(1_000);
    await waitForDecided(ids);

    const snap = await snapshot(show.id);
    expect(auditProblems(snap)).toEqual([]);
    expect(snap.bookings).toHaveLength(1_000);
    expect(held(snap)).toHaveLength(200);
    expect(failedWith(snap, 'SOLD_OUT')).toHaveLength(800);
    // Demand exceeded supply, so nothing may be left over, and every seat has exactly one holder.
    expect(available(snap)).toBe(0);
    expect(snap.seats.filter((seat) => seat.status === 'HELD')).toHaveLength(200);
    expect(new Set(held(snap).flatMap((booking) => booking.seat_ids)).size).toBe(200);
    // No attempt failed, not even transiently: contention is handled inside the worker.
    expect(failures).toEqual([]);

    // What clients polling the API see agrees with the tables.
    const statuses = await Promise.all(ids.map((id) => call(api.app, 'GET', `/booking/${id}/status`)));
    const seen = { HELD: 0, SOLD_OUT: 0, other: 0 };
    statuses.forEach((reply, index) => {
      const row = snap.bookingById.get(ids[index]!)!;
      if (reply.body.status === 'HELD' && row.status === 'HELD' && reply.body.seats.join() === row.seat_labels.join()) seen.HELD++;
      else if (reply.body.status === 'FAILED' && reply.body.reason === 'SOLD_OUT' && row.failure_reason === 'SOLD_OUT') seen.SOLD_OUT++;
      else seen.other++;
    });
    expect(seen).toEqual({ HELD: 200, SOLD_OUT: 800, other: 0 });
  });
});

describe('a mixed burst: multi-seat, sections and specific seats', () => {
  it('never sells a seat twice, is all-or-nothing, and fails only when it must', async () => {
    const sections = [
      { name: 'VIP', rows: 2, seats_per_row: 9, price_cents: 15_000 },
      { name: 'Floor', rows: 5, seats_per_row: 10, price_cents: 8_000 },
      { name: 'Balcony', rows: 4, seats_per_row: 7, price_cents: 4_000 },
    ];
    const show = await createShow(api.app, { sections });
    // Two differently tuned workers at once: one group-commits, one decides nearly alone.
    const { failures } = await startFleet({ WORKER_CONCURRENCY: '50' }, { WORKER_CONCURRENCY: '20', WORKER_BATCH_SIZE: '3' });

    const random = prng(20_261_122);
    const pick = <T>(items: T[]) => items[Math.floor(random() * items.length)]!;
    const bodies: BookingBody[] = Array.from({ length: 300 }, (_, i) => {
      const customer_email = `mixed-${i}@example.com`;
      if (i % 6 === 0) {
        // 2-3 neighbouring seats somewhere in the house: they collide with each other and
        // with best-available claims.
        const section = pick(sections);
        const row = 1 + Math.floor(random() * section.rows);
        const count = 2 + Math.floor(random() * 2);
        const first = 1 + Math.floor(random() * (section.seats_per_row - count + 1));
        const seats = Array.from({ length: count }, (_, k) => `${section.name}-${rowName(row)}-${first + k}`);
        return { show_id: show.id, customer_email, seats };
      }
      // Sizes that do not divide the sections evenly, so sections end with a few seats left
      // and the sold-out rule below is checked against a non-empty remainder.
      const section = pick([undefined, 'VIP', 'Floor', 'Balcony']);
      const seat_count = section === 'VIP' ? 4 : section === 'Floor' ? 3 : section === 'Balcony' ? pick([2, 4]) : 5;
      return { show_id: show.id, customer_email, seat_count, ...(section ? { section } : {}) };
    });

    const ids = await submitAll(bodies);
    await waitForDecided(ids);
    const snap = await snapshot(show.id);
    expect(auditProblems(snap)).toEqual([]);
    // Every request decided, and no transient error (deadlock, serialization) surfaced even as a retry.
    expect(snap.bookings).toHaveLength(bodies.length);
    expect(failures).toEqual([]);

    const tally: Record<string, number> = {};
    const violations: string[] = [];
    bodies.forEach((body, index) => {
      const booking = snap.bookingById.get(ids[index]!)!;
      const kind = body.seats ? 'specific' : 'best';
      const outcome = `${kind}:${booking.status}${booking.failure_reason ? `:${booking.failure_reason}` : ''}`;
      tally[outcome] = (tally[outcome] ?? 0) + 1;
      const labels = booking.seat_labels;
      if (body.seats) {
        if (booking.status === 'HELD') {
          if ([...labels].sort().join() !== [...body.seats].sort().join()) violations.push(`${outcome} got ${labels} for ${body.seats}`);
        } else if (booking.failure_reason === 'SEATS_UNAVAILABLE') {
          // No seat is released in this test, so a seat that was taken then is taken now.
          const stillTaken = body.seats.some((label) => snap.seats.find((seat) => seat.label === label)!.status !== 'AVAILABLE');
          if (!stillTaken) violations.push(`${body.seats} refused though all are still AVAILABLE`);
        } else violations.push(`specific request ${outcome}`);
      } else if (booking.status === 'HELD') {
        const inSection = labels.every((label) => !body.section || label.startsWith(`${body.section}-`));
        if (!inSection) violations.push(`${labels} outside section ${body.section}`);
      } else if (booking.failure_reason === 'SOLD_OUT') {
        // The guarantee: SOLD_OUT means that, in the committed state when it was decided,
        // fewer than seat_count seats were AVAILABLE in the section (locked ones included).
        // Nothing is released here, so AVAILABLE only shrinks: it is still short at the end.
        const left = available(snap, body.section);
        if (left >= body.seat_count!) violations.push(`SOLD_OUT for ${body.seat_count} in ${body.section ?? 'any'} with ${left} left`);
      } else violations.push(`best-available request ${outcome}`);
    });
    expect(violations).toEqual([]);
    // The workload really exercised every path.
    for (const outcome of ['specific:HELD', 'specific:FAILED:SEATS_UNAVAILABLE', 'best:HELD', 'best:FAILED:SOLD_OUT']) {
      expect(tally[outcome], outcome).toBeGreaterThan(0);
    }
    const leftPerSection = Object.fromEntries(sections.map((section) => [section.name, available(snap, section.name)]));
    const soldOutWithSeatsLeft = bodies.filter((body, index) => {
      const booking = snap.bookingById.get(ids[index]!)!;
      return booking.failure_reason === 'SOLD_OUT' && available(snap, body.section) > 0;
    }).length;
    console.info('mixed burst outcomes', tally, 'seats left', leftPerSection, 'SOLD_OUT with some seats left', soldOutWithSeatsLeft);
  });
});

describe('per-customer cap under concurrency', () => {
  it('holds at most MAX_SEATS_PER_CUSTOMER seats per customer, whatever the case of the email', async () => {
    const show = await createShow(api.app, { total_seats: 300 });
    const { failures } = await startFleet(
      { MAX_SEATS_PER_CUSTOMER: '10' },
      { MAX_SEATS_PER_CUSTOMER: '10', WORKER_BATCH_SIZE: '1' },
    );
    const spellings = ['Cap@Example.com', 'cap@example.com', 'CAP@EXAMPLE.COM', 'cAp@ExAmPlE.cOm'];
    const capped: BookingBody[] = Array.from({ length: 30 }, (_, i) => ({
      show_id: show.id,
      customer_email: spellings[i % spellings.length]!,
      seat_count: 1 + (i % 3),
    }));
    // Another customer in the same burst is limited separately: ten singles all fit.
    const neighbour: BookingBody[] = Array.from({ length: 10 }, () => ({ show_id: show.id, customer_email: 'Neighbour@example.com', seat_count: 1 }));
    const ids = await submitAll([...capped, ...neighbour]);
    await waitForDecided(ids);

    const snap = await snapshot(show.id);
    expect(auditProblems(snap)).toEqual([]);
    expect(failures).toEqual([]);
    const mine = snap.bookings.filter((booking) => booking.customer_email === 'cap@example.com');
    expect(mine).toHaveLength(30);
    const heldSeats = mine.filter((booking) => booking.status === 'HELD').reduce((sum, booking) => sum + booking.seat_count, 0);
    expect(heldSeats).toBeLessThanOrEqual(10);
    const refused = mine.filter((booking) => booking.status === 'FAILED');
    expect(refused.every((booking) => booking.failure_reason === 'LIMIT_EXCEEDED')).toBe(true);
    // Refused only when it would not have fitted: holds never shrink here, so a request
    // refused then would still overflow now.
    expect(refused.filter((booking) => heldSeats + booking.seat_count <= 10)).toEqual([]);
    expect(refused.length).toBeGreaterThan(0);

    const theirs = snap.bookings.filter((booking) => booking.customer_email === 'neighbour@example.com');
    expect(theirs.map((booking) => booking.status)).toEqual(Array(10).fill('HELD'));
    console.info(`cap: ${heldSeats} seats held by one customer over ${30 - refused.length} bookings, ${refused.length} LIMIT_EXCEEDED`);
  });
});

describe('a job delivered twice changes nothing', () => {
  const settings: DecideSettings = { holdSeconds: 600, maxSeatsPerCustomer: 10, waitlistOfferSeconds: 900 };
  let serial = 0;
  const job = (showId: string, more: Partial<BookingJob> = {}): BookingJob => ({
    id: randomUUID(),
    show_id: showId,
    customer_email: `twice-${serial++}@example.com`,
    seat_count: 2,
    section: null,
    seats: null,
    accepted_at: new Date().toISOString(),
    idempotency_key: null,
    request_id: 'concurrency-test',
    ...more,
  });
  const decidedOf = (decisions: Map<string, Decision>, id: string) => {
    const decision = decisions.get(id);
    if (decision?.kind !== 'decided') throw new Error(`${id} not decided: ${JSON.stringify(decision)}`);
    return decision;
  };
  const rowsOf = async (id: string) =>
    (await ctx.pool.query('SELECT status, seat_ids FROM bookings WHERE id = $1', [id])).rows as Array<{ status: string; seat_ids: number[] }>;
  const seatsHeldBy = async (id: string) =>
    (await ctx.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM seats WHERE booking_id = $1', [id])).rows[0]!.n;

  it('decided twice in a row: the second returns the first decision', async () => {
    const show = await createShow(api.app, { total_seats: 20 });
    const layout = (await loadLayout(ctx.db, show.id))!;
    const request = job(show.id);
    const first = decidedOf(await decideBookings(ctx.db, layout, [request], settings), request.id);
    const second = decidedOf(await decideBookings(ctx.db, layout, [request], settings), request.id);
    expect(first).toMatchObject({ duplicate: false, booking: { status: 'HELD' } });
    expect(second.duplicate).toBe(true);
    expect(second.booking).toEqual(first.booking);
    expect(await rowsOf(request.id)).toHaveLength(1);
    expect(await seatsHeldBy(request.id)).toBe(2);
    expect(auditProblems(await snapshot(show.id))).toEqual([]);
  });

  it('decided in two overlapping transactions: one booking, the loser rolls back and reads it', async () => {
    const show = await createShow(api.app, { total_seats: 20 });
    const layout = (await loadLayout(ctx.db, show.id))!;
    const request = job(show.id);
    // Force the worst interleaving: hold the customer's advisory lock (taken by decide after its
    // duplicate check), so both transactions pass the check before either inserts.
    const blocker = new pg.Client({ connectionString: ctx.databaseUrl });
    await blocker.connect();
    try {
      await blocker.query(`SELECT pg_advisory_lock(hashtextextended($1 || '|' || $2, 0))`, [show.id, request.customer_email]);
      const racing = [decideBookings(ctx.db, layout, [request], settings), decideBookings(ctx.db, layout, [request], settings)];
      await waitFor(async () => {
        const { rows } = await blocker.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
        );
        return rows[0]!.n === 2 ? true : undefined;
      }, 'both transactions to wait on the customer lock');
      await blocker.query('SELECT pg_advisory_unlock_all()');
      const settled = await Promise.allSettled(racing);
      const won = settled.filter((result) => result.status === 'fulfilled');
      const lost = settled.filter((result) => result.status === 'rejected');
      expect(won).toHaveLength(1);
      expect(lost).toHaveLength(1);
      expect((lost[0] as PromiseRejectedResult).reason).toBeInstanceOf(ConcurrentDecisionError);
      const winner = decidedOf((won[0] as PromiseFulfilledResult<Map<string, Decision>>).value, request.id);
      expect(winner).toMatchObject({ duplicate: false, booking: { status: 'HELD' } });
      // The loser's redo (what the worker does) finds the winner's decision.
      const redo = decidedOf(await decideBookings(ctx.db, layout, [request], settings), request.id);
      expect(redo).toMatchObject({ duplicate: true, booking: winner.booking });
    } finally {
      await blocker.end();
    }
    expect(await rowsOf(request.id)).toHaveLength(1);
    expect(await seatsHeldBy(request.id)).toBe(2);
    const snap = await snapshot(show.id);
    expect(auditProblems(snap)).toEqual([]);
    expect(snap.seats.filter((seat) => seat.status !== 'AVAILABLE')).toHaveLength(2);
  });

  it('delivered to two processes and twice to one, among other requests: every copy gets the same answer', async () => {
    const show = await createShow(api.app, { total_seats: 400 });
    const logger = createLogger(ctx.config, 'test');
    // Two "processes": separate batchers and pools, as two worker processes would have.
    const handles = [1, 2].map(() => createDb({ connectionString: ctx.databaseUrl, max: 2, applicationName: 'ticket-rush-test' }));
    try {
      const processors = handles.map(({ db }) =>
        createBookingProcessor({ db, layouts: new LayoutCache(db), settings, batchSize: 50, logger }),
      );
      const requests = Array.from({ length: 40 }, () => job(show.id, { seat_count: 1 + Math.floor(Math.random() * 3) }));
      const copies = requests.flatMap((request) => [
        processors[0]!.decideRequest(request, 1),
        processors[1]!.decideRequest(request, 1),
        processors[0]!.decideRequest(request, 1),
      ]);
      const results = await Promise.all(copies);
      requests.forEach((request, index) => {
        const copies = results.slice(index * 3, index * 3 + 3);
        // One copy decided it; the others found that decision (and do not record it again).
        expect(copies.filter((decided) => decided.fresh), request.id).toHaveLength(1);
        const [a, b, c] = copies.map((decided) => decided.result) as [BookingResult, BookingResult, BookingResult];
        expect(b, request.id).toEqual(a);
        expect(c, request.id).toEqual(a);
        expect(a.status).toBe('HELD');
      });
    } finally {
      await Promise.all(handles.map(({ pool }) => pool.end()));
    }
    const snap = await snapshot(show.id);
    expect(auditProblems(snap)).toEqual([]);
    expect(snap.bookings).toHaveLength(40);
    expect(snap.seats.filter((seat) => seat.status === 'HELD')).toHaveLength(snap.bookings.reduce((sum, b) => sum + b.seat_count, 0));
  });

  it('re-run by BullMQ (retried, or re-added under the same id after removal): same booking, same seats', async () => {
    const show = await createShow(api.app, { total_seats: 20 });
    await startFleet({}, {});
    const events = new QueueEvents(QUEUES.bookings, { connection: ctx.redis.duplicate(), prefix: ctx.config.QUEUE_PREFIX });
    try {
      await events.waitUntilReady();
      const request = job(show.id, { seat_count: 3 });
      const spec = JOBS['process-bookings'];
      const index = new RequestIndex(ctx.redis, queue);
      const recorded = async () => {
        const entry = await index.lookup(request.id);
        return entry.state === 'decided' ? (JSON.parse(entry.result) as BookingResult) : entry;
      };
      const jobId = randomUUID();
      await index.register(jobId, [request.id]); // as the API does before adding the job
      const first = await queue.add('process-bookings', { requests: [request] }, { ...spec.options, jobId });
      expect(await first.waitUntilFinished(events, 20_000)).toEqual({ decided: 1, held: 1, failed: 0 });
      const firstResult = await recorded();
      expect(firstResult).toMatchObject({ status: 'HELD' });
      expect((firstResult as BookingResult).seats).toHaveLength(3);

      // A completed job run again (an operator's retry, or a redelivery after a stall).
      await first.retry('completed');
      const retried = await queue.getJob(jobId);
      expect(await retried!.waitUntilFinished(events, 20_000)).toEqual({ decided: 1, held: 1, failed: 0 });
      expect(await recorded()).toEqual(firstResult);

      // Removed (removeOnComplete), then the same request added again in another batch.
      await queue.remove(jobId);
      expect(await queue.getJob(jobId)).toBeUndefined();
      const again = await queue.add('process-bookings', { requests: [request] }, { ...spec.options, jobId: randomUUID() });
      expect(await again.waitUntilFinished(events, 20_000)).toEqual({ decided: 1, held: 1, failed: 0 });
      expect(await recorded()).toEqual(firstResult);

      expect(await rowsOf(request.id)).toHaveLength(1);
      expect(await seatsHeldBy(request.id)).toBe(3);
      const snap = await snapshot(show.id);
      expect(auditProblems(snap)).toEqual([]);
      expect(snap.seats.filter((seat) => seat.status !== 'AVAILABLE')).toHaveLength(3);
    } finally {
      await events.close();
    }
  });
});

describe('adjacency', () => {
  const settings: DecideSettings = { holdSeconds: 600, maxSeatsPerCustomer: 100, waitlistOfferSeconds: 900 };

  const requestOf = (showId: string, more: Partial<BookingJob>): BookingJob => ({
    id: randomUUID(),
    show_id: showId,
    customer_email: `adjacent-${randomUUID()}@example.com`,
    seat_count: more.seats?.length ?? 1,
    section: null,
    seats: null,
    accepted_at: new Date().toISOString(),
    idempotency_key: null,
    request_id: 'adjacency-test',
    ...more,
  });

  async function decideOne(showId: string, more: Partial<BookingJob>): Promise<string[]> {
    const layout = (await loadLayout(ctx.db, showId))!;
    const request = requestOf(showId, more);
    const decision = (await decideBookings(ctx.db, layout, [request], settings)).get(request.id);
    if (decision?.kind !== 'decided' || decision.booking.status !== 'HELD') throw new Error(`not held: ${JSON.stringify(decision)}`);
    return decision.booking.seats;
  }

  /** Front (3 rows of 6) and Back (2 of 6), with Front-A-3 and Front-B-5 taken. */
  async function frontAndBack() {
    const show = await createShow(api.app, {
      sections: [
        { name: 'Front', rows: 3, seats_per_row: 6, price_cents: 5_000 },
        { name: 'Back', rows: 2, seats_per_row: 6, price_cents: 2_000 },
      ],
    });
    // Row A: A-3 taken, so no four in a row (1-2, 4-6). Row B: B-5 taken, B-1..B-4 free.
    await decideOne(show.id, { seats: ['Front-A-3'] });
    await decideOne(show.id, { seats: ['Front-B-5'] });
    return show;
  }

  it('takes the first run of adjacent seats in one row, else the first seats in order', async () => {
    const show = await frontAndBack();

    // A-1, A-2, A-4, A-5 come first in seat order, but four together win.
    expect(await decideOne(show.id, { seat_count: 4, section: 'Front' })).toEqual(['Front-B-1', 'Front-B-2', 'Front-B-3', 'Front-B-4']);
    expect(await decideOne(show.id, { seat_count: 4, section: 'Front' })).toEqual(['Front-C-1', 'Front-C-2', 'Front-C-3', 'Front-C-4']);
    // A pair still fits together in row A.
    expect(await decideOne(show.id, { seat_count: 2, section: 'Front' })).toEqual(['Front-A-1', 'Front-A-2']);
    // Front now has A-4, A-5, A-6, B-6, C-5, C-6: three together in row A.
    expect(await decideOne(show.id, { seat_count: 3, section: 'Front' })).toEqual(['Front-A-4', 'Front-A-5', 'Front-A-6']);
    // Any section: Front still has a pair together (C-5, C-6), and Front ranks first.
    expect(await decideOne(show.id, { seat_count: 2 })).toEqual(['Front-C-5', 'Front-C-6']);
    // Only B-6 left in Front; four together exist only in Back, and "any section" prefers them.
    expect(await decideOne(show.id, { seat_count: 4 })).toEqual(['Back-A-1', 'Back-A-2', 'Back-A-3', 'Back-A-4']);

    // No run of four anywhere in Back (A-5, A-6, and row B broken up): the first four in order.
    await decideOne(show.id, { seats: ['Back-B-3'] });
    expect(await decideOne(show.id, { seat_count: 4, section: 'Back' })).toEqual(['Back-A-5', 'Back-A-6', 'Back-B-1', 'Back-B-2']);
    expect(auditProblems(await snapshot(show.id))).toEqual([]);
  });

  /** One batch, decided in one transaction (through `db`): each request's seats, or its status. */
  async function decideBatch(showId: string, requests: Partial<BookingJob>[], options: { db?: Database; maxSeatsPerCustomer?: number } = {}) {
    const layout = (await loadLayout(ctx.db, showId))!;
    const jobs = requests.map((more) => requestOf(showId, more));
    const decisions = await decideBookings(options.db ?? ctx.db, layout, jobs, { ...settings, maxSeatsPerCustomer: options.maxSeatsPerCustomer ?? settings.maxSeatsPerCustomer });
    return jobs.map((job) => {
      const decision = decisions.get(job.id);
      if (decision?.kind !== 'decided') return 'CONTENDED';
      return decision.booking.status === 'HELD' ? decision.booking.seats : `${decision.booking.status}:${decision.booking.reason}`;
    });
  }

  it('a batch of groups is seated as one request at a time would be, with one lock statement for all their seats', async () => {
    const show = await frontAndBack();
    const { counted, sent } = countingDb(ctx.databaseUrl, 'adjacency-test');
    try {
      // The sequence of the test above, as one batch, with singles between the groups.
      const seated = await decideBatch(
        show.id,
        [
          { seat_count: 4, section: 'Front' },
          { seat_count: 1, section: 'Back' },
          { seat_count: 4, section: 'Front' },
          { seat_count: 2, section: 'Front' },
          { seat_count: 3, section: 'Front' },
          { seat_count: 1 },
          { seat_count: 2 },
          { seat_count: 4 },
        ],
        { db: counted.db },
      );
      expect(seated).toEqual([
        ['Front-B-1', 'Front-B-2', 'Front-B-3', 'Front-B-4'],
        ['Back-A-1'],
        ['Front-C-1', 'Front-C-2', 'Front-C-3', 'Front-C-4'],
        ['Front-A-1', 'Front-A-2'],
        ['Front-A-4', 'Front-A-5', 'Front-A-6'],
        // Front's first free seat in seat order, then its last pair together.
        ['Front-B-6'],
        ['Front-C-5', 'Front-C-6'],
        // No four together left in Front; the Back single took A-1, and A-2 to A-5 are together.
        ['Back-A-2', 'Back-A-3', 'Back-A-4', 'Back-A-5'],
      ]);
      // The first look; BEGIN, the customers' locks, their standing, one free list per section
      // asked for (Front, Back, any), one lock for every planned seat, the write, COMMIT: no
      // statement per request.
      expect(sent).toEqual(['WITH', 'BEGIN', 'SELECT', 'SELECT', 'SELECT', 'SELECT', 'SELECT', 'SELECT', 'WITH', 'COMMIT']);
    } finally {
      await counted.pool.end();
    }
    expect(auditProblems(await snapshot(show.id))).toEqual([]);
  });

  it('a planned seat another transaction has locked: from that group on, the batch is seated one by one, still in line order', async () => {
    const show = await createShow(api.app, { sections: [{ name: 'Stalls', rows: 3, seats_per_row: 4, price_cents: 3_000 }] });
    const blocker = new pg.Client({ connectionString: ctx.databaseUrl });
    await blocker.connect();
    try {
      await blocker.query('BEGIN');
      await blocker.query(`SELECT id FROM seats WHERE show_id = $1 AND label = 'Stalls-A-2' FOR UPDATE`, [show.id]);
      // The plan gives row A to the first group and row B to the second; A-2 does not lock, so
      // the first takes row B (the plan's, still locked by this transaction) and the second row C.
      expect(await decideBatch(show.id, [{ seat_count: 4 }, { seat_count: 4 }])).toEqual([
        ['Stalls-B-1', 'Stalls-B-2', 'Stalls-B-3', 'Stalls-B-4'],
        ['Stalls-C-1', 'Stalls-C-2', 'Stalls-C-3', 'Stalls-C-4'],
      ]);
    } finally {
      await blocker.query('ROLLBACK');
      await blocker.end();
    }
    expect(auditProblems(await snapshot(show.id))).toEqual([]);
  });

  it('a planned group over its customer\'s cap leaves its seats to the requests after it', async () => {
    const show = await createShow(api.app, { sections: [{ name: 'Stalls', rows: 2, seats_per_row: 4, price_cents: 3_000 }] });
    const greedy = `greedy-${randomUUID()}@example.com`;
    // The plan: the pair A-1, A-2, then row B for the greedy four (over a cap of 4), and nothing
    // together for the next four. Once the greedy four is refused, row B is theirs.
    expect(
      await decideBatch(
        show.id,
        [
          { customer_email: greedy, seat_count: 2 },
          { customer_email: greedy, seat_count: 4 },
          { seat_count: 4 },
          { seat_count: 2 },
        ],
        { maxSeatsPerCustomer: 4 },
      ),
    ).toEqual([['Stalls-A-1', 'Stalls-A-2'], 'FAILED:LIMIT_EXCEEDED', ['Stalls-B-1', 'Stalls-B-2', 'Stalls-B-3', 'Stalls-B-4'], ['Stalls-A-3', 'Stalls-A-4']]);
    expect(auditProblems(await snapshot(show.id))).toEqual([]);
  });

  // A batch of single seats only keeps one pool per section, taken at its first single: across
  // sections that can order them differently (docs/ARCHITECTURE.md, "Group commit").
  it('a batch with groups is seated as deciding its requests one by one would seat them (property)', async () => {
    const sections = [
      { name: 'Front', rows: 3, seats_per_row: 5, price_cents: 5_000 },
      { name: 'Back', rows: 2, seats_per_row: 6, price_cents: 2_000 },
    ];
    const labels = sections.flatMap((section) =>
      Array.from({ length: section.rows * section.seats_per_row }, (_, k) => `${section.name}-${rowName(Math.floor(k / section.seats_per_row) + 1)}-${(k % section.seats_per_row) + 1}`),
    );
    const wanted = fc.record({ seat_count: fc.integer({ min: 1, max: 4 }), section: fc.constantFrom(null, 'Front', 'Back') });
    await fc.assert(
      fc.asyncProperty(fc.subarray(labels, { maxLength: 12 }), fc.array(wanted, { minLength: 2, maxLength: 12 }).filter((batch) => batch.some((request) => request.seat_count > 1)), async (taken, batch) => {
        const [together, oneByOne] = [await createShow(api.app, { sections }), await createShow(api.app, { sections })];
        for (const show of [together, oneByOne]) for (const label of taken) await decideOne(show.id, { seats: [label] });
        const seated = await decideBatch(together.id, batch);
        const alone: unknown[] = [];
        for (const request of batch) alone.push(...(await decideBatch(oneByOne.id, [request])));
        expect(seated).toEqual(alone);
      }),
      { numRuns: 30 },
    );
  });

  it('general admission: the first gap wide enough', async () => {
    const show = await createShow(api.app, { total_seats: 12 });
    await decideOne(show.id, { seats: ['3'] });
    await decideOne(show.id, { seats: ['6'] });
    expect(await decideOne(show.id, { seat_count: 3 })).toEqual(['7', '8', '9']);
    expect(await decideOne(show.id, { seat_count: 2 })).toEqual(['1', '2']);
    // Free now: 4, 5, 10, 11, 12.
    expect(await decideOne(show.id, { seat_count: 4 })).toEqual(['4', '5', '10', '11']);
  });

  it('under a concurrent burst of 4-seat requests with two workers, bookings stay in one row', async () => {
    // Rows of 6 seats: one group of four per row, and the first four free seats in seat order
    // (the fallback) would straddle two rows. Four spare rows: two transactions racing for one
    // row can each lock part of it, leaving it unusable until they commit.
    const show = await createShow(api.app, { sections: [{ name: 'Stalls', rows: 24, seats_per_row: 6, price_cents: 3_000 }] });
    const { failures } = await startFleet({}, { WORKER_BATCH_SIZE: '2' });
    const ids = await submitAll(
      Array.from({ length: 20 }, (_, i) => ({ show_id: show.id, customer_email: `group-${i}@example.com`, seat_count: 4 })),
    );
    await waitForDecided(ids);
    const snap = await snapshot(show.id);
    expect(auditProblems(snap)).toEqual([]);
    expect(failures).toEqual([]);
    expect(held(snap)).toHaveLength(20);
    const together = held(snap).filter((booking) => {
      const seats = booking.seat_ids.map((id) => snap.seatById.get(id)!);
      return seats.every((seat) => seat.row === seats[0]!.row) && seats.every((seat, k) => seat.number === seats[0]!.number + k);
    });
    console.info(`adjacency under concurrency: ${together.length}/20 groups seated together`);
    expect(together).toHaveLength(20);
  });
});

describe('SKIP LOCKED is never a false SOLD_OUT', () => {
  it('waits for seats another transaction has locked, and takes them when it lets go', async () => {
    const show = await createShow(api.app, { total_seats: 20 });
    const { failures } = await startFleet({}, {});
    const blocker = new pg.Client({ connectionString: ctx.databaseUrl });
    await blocker.connect();
    try {
      // Seats 1-5 (first in seat order) row-locked by an open transaction, still AVAILABLE.
      await blocker.query('BEGIN');
      const locked = await blocker.query(`SELECT id FROM seats WHERE show_id = $1 AND label = ANY($2) FOR UPDATE`, [
        show.id,
        ['1', '2', '3', '4', '5'],
      ]);
      expect(locked.rowCount).toBe(5);

      // The 15 unlocked seats go at once, to 15 singles.
      const first = await submitAll(Array.from({ length: 15 }, (_, i) => ({ show_id: show.id, customer_email: `early-${i}@example.com`, seat_count: 1 })));
      await waitForDecided(first);
      let snap = await snapshot(show.id);
      expect(first.map((id) => snap.bookingById.get(id)!.status)).toEqual(Array(15).fill('HELD'));

      // Then demand exactly equal to the locked seats: 1 + 1 + 3.
      const waiting = await submitAll([
        { show_id: show.id, customer_email: 'late-1@example.com', seat_count: 1 },
        { show_id: show.id, customer_email: 'late-2@example.com', seat_count: 1 },
        { show_id: show.id, customer_email: 'late-3@example.com', seat_count: 3 },
      ]);
      // Each job exhausts its in-worker contended rounds (dozens of claims, each seeing only
      // locked seats) and goes back to BullMQ for a retry: it was looked at, and not failed.
      const index = new RequestIndex(ctx.redis, queue);
      const batchIds = new Set(await Promise.all(waiting.map(async (id) => (await index.jobIdOf(id))!)));
      await waitFor(async () => {
        const jobs = await Promise.all([...batchIds].map((id) => queue.getJob(id)));
        // The worker's 'failed' event comes a moment after Redis counts the attempt: wait for both.
        const retried = jobs.every((queued) => queued && queued.attemptsMade >= 1);
        return retried && failures.length >= batchIds.size ? true : undefined;
      }, 'contended jobs to be retried');
      const decidedMeanwhile = await ctx.pool.query('SELECT id, status, failure_reason FROM bookings WHERE id = ANY($1::uuid[])', [waiting]);
      expect(decidedMeanwhile.rows).toEqual([]);
      expect(failures.length).toBeGreaterThanOrEqual(batchIds.size);
      expect(failures.every((failure) => failure.includes('seats stayed locked by other transactions'))).toBe(true);

      await blocker.query('ROLLBACK');
      await waitForDecided(waiting);
      snap = await snapshot(show.id);
      expect(auditProblems(snap)).toEqual([]);
      expect(waiting.map((id) => snap.bookingById.get(id)!.status)).toEqual(['HELD', 'HELD', 'HELD']);
      expect(available(snap)).toBe(0);
      console.info(`skip-locked: ${failures.length} contended attempts handed back to BullMQ, 0 SOLD_OUT while seats were locked`);

      // And when the seats really are gone, SOLD_OUT comes at once.
      const [last] = await submitAll([{ show_id: show.id, customer_email: 'too-late@example.com', seat_count: 1 }]);
      await waitForDecided([last!]);
      expect((await snapshot(show.id)).bookingById.get(last!)).toMatchObject({ status: 'FAILED', failure_reason: 'SOLD_OUT' });
    } finally {
      await blocker.query('ROLLBACK').catch(() => {});
      await blocker.end();
    }
  });
});
