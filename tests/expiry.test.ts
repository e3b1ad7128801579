import { randomUUID } from 'node:crypto';
import type { Job } from 'bullmq';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { decideBookings, type DecideSettings } from '../shared/booking/decide.js';
import { releaseLapsedHolds, sweepLapsedHolds, type ExpiryResult } from '../shared/booking/expire.js';
import { confirmBooking } from '../shared/booking/settle.js';
import type { ShowLayout } from '../shared/booking/layout.js';
import { createShow, generalAdmission, listSeats, loadLayout } from '../shared/booking/shows.js';
import { createDb, type DbHandle } from '../shared/db/client.js';
import { JOBS, QUEUES, type BookingJob } from '../shared/queue/catalog.js';
import { openQueue } from '../shared/queue/queues.js';
import type { RunningWorker } from '../services/worker/worker.js';
import { waitFor } from './support/wait.js';
import { openTestContext } from './support/context.js';

/**
 * Releasing lapsed holds. The sweep may run in many places at once (the scheduled job on any
 * worker, a claim that found only lapsed holds, a confirm of a lapsed hold); each hold must be
 * released exactly once and nothing else touched. And however many workers register the
 * schedule, there is one scheduler and one sweep per tick.
 */

// Small pools: several test files run at once against one Postgres (max_connections 100).
const ctx = await openTestContext({ DB_POOL_SIZE: '2' });


const request = (showId: string, seatCount: number): BookingJob => ({
  id: randomUUID(),
  show_id: showId,
  customer_email: `expiry-${randomUUID()}@example.com`,
  seat_count: seatCount,
  section: null,
  seats: null,
  accepted_at: new Date().toISOString(),
  idempotency_key: null,
  request_id: 'expiry-test',
});

/** Holds for `holdSeconds`, decided by the real claim code, one transaction for all. */
async function placeHolds(showId: string, sizes: number[], holdSeconds: number): Promise<{ ids: string[]; seats: number }> {
  const layout = (await loadLayout(ctx.db, showId))!;
  const requests = sizes.map((size) => request(showId, size));
  const settings: DecideSettings = { holdSeconds, maxSeatsPerCustomer: 100, waitlistOfferSeconds: 900 };
  const decisions = await decideBookings(ctx.db, layout, requests, settings);
  for (const job of requests) {
    const decision = decisions.get(job.id);
    if (decision?.kind !== 'decided' || decision.booking.status !== 'HELD') throw new Error(`not held: ${JSON.stringify(decision)}`);
  }
  return { ids: requests.map((job) => job.id), seats: sizes.reduce((sum, size) => sum + size, 0) };
}

/**
 * Decides one request as the worker does: a 'contended' answer (the seats it needs are locked
 * by another transaction right now, e.g. a sweep releasing them) means try again shortly.
 */
async function decideUntilDecided(handle: DbHandle, layout: ShowLayout, job: BookingJob, settings: DecideSettings) {
  for (let round = 1; ; round++) {
    const decision = (await decideBookings(handle.db, layout, [job], settings)).get(job.id);
    if (decision?.kind === 'decided') return decision;
    if (round >= 200) throw new Error(`still contended after ${round} rounds`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

async function newShow(seats: number): Promise<string> {
  return (await createShow(ctx.db, { name: 'Expiry show', startTime: new Date('2030-01-01T20:00:00Z'), layout: generalAdmission(seats) })).id;
}

/** Waits (on Postgres's clock, which decides lapses) until every hold of the show has lapsed. */
async function waitUntilLapsed(showId: string): Promise<void> {
  await waitFor(async () => {
    const { rows } = await ctx.pool.query<{ lapsed: boolean }>(
      `SELECT coalesce(bool_and(hold_expires_at <= now()), true) AS lapsed FROM bookings WHERE show_id = $1 AND status = 'HELD'`,
      [showId],
    );
    return rows[0]!.lapsed ? true : undefined;
  }, 'holds to lapse');
}

/** Seats and bookings agree: every taken seat's booking is live and lists it, and back. */
async function auditProblems(showId: string): Promise<string[]> {
  const { rows } = await ctx.pool.query<{ problem: string }>(
    `SELECT 'seat ' || s.label || ' ' || s.status || ' for ' || coalesce(b.status, 'no booking') AS problem
     FROM seats s LEFT JOIN bookings b ON b.id = s.booking_id
     WHERE s.show_id = $1 AND s.status <> 'AVAILABLE'
       AND (b.id IS NULL OR NOT s.id = ANY(b.seat_ids)
            OR (s.status = 'HELD') <> (b.status = 'HELD') OR (s.status = 'BOOKED') <> (b.status = 'CONFIRMED'))
     UNION ALL
     SELECT 'booking ' || b.id || ' ' || b.status || ' lost seat ' || seat_id
     FROM bookings b CROSS JOIN unnest(b.seat_ids) AS seat_id
     LEFT JOIN seats s ON s.id = seat_id AND s.booking_id = b.id
     WHERE b.show_id = $1 AND b.status IN ('HELD', 'CONFIRMED') AND s.id IS NULL`,
    [showId],
  );
  return rows.map((row) => row.problem);
}

async function counts(showId: string): Promise<Record<string, number>> {
  const { rows } = await ctx.pool.query<{ key: string; n: number }>(
    `SELECT 'booking:' || status AS key, count(*)::int AS n FROM bookings WHERE show_id = $1 GROUP BY status
     UNION ALL
     SELECT 'seat:' || status, count(*)::int FROM seats WHERE show_id = $1 GROUP BY status`,
    [showId],
  );
  return Object.fromEntries(rows.map((row) => [row.key, row.n]));
}

describe('overlapping sweeps', () => {
  it('six sweepers on six connections release each lapsed hold exactly once', async () => {
    const showId = await newShow(800);
    const sizes = Array.from({ length: 300 }, (_, i) => 1 + (i % 3));
    const { seats } = await placeHolds(showId, sizes, 1);
    await waitUntilLapsed(showId);

    // Each sweeper is its own pool (as each worker process has), sweeping in small batches so
    // their transactions interleave many times.
    const handles: DbHandle[] = Array.from({ length: 6 }, () =>
      createDb({ connectionString: ctx.databaseUrl, max: 1, applicationName: 'expiry-test' }),
    );
    let results: ExpiryResult[];
    try {
      results = await Promise.all(handles.map(({ db }) => sweepLapsedHolds(db, { offerSeconds: 900 }, 7)));
    } finally {
      await Promise.all(handles.map(({ pool }) => pool.end()));
    }
    const total = results.reduce((sum, result) => ({ bookings: sum.bookings + result.bookings, seats: sum.seats + result.seats }), {
      bookings: 0,
      seats: 0,
    });
    // Exactly once: the counts add up to what there was, no more.
    expect(total).toEqual({ bookings: 300, seats });
    expect(await counts(showId)).toEqual({ 'booking:EXPIRED': 300, 'seat:AVAILABLE': 800 });
    expect(await auditProblems(showId)).toEqual([]);
    // A sweep after the fact finds nothing.
    expect(await sweepLapsedHolds(ctx.db, { offerSeconds: 900 })).toEqual({ bookings: 0, seats: 0 });
    console.info(`overlapping sweeps: ${total.bookings} holds / ${total.seats} seats released once, per sweeper`, results.map((r) => r.bookings));
  });

  it('sweeps racing new claims and confirms of lapsed holds: nothing released twice, nothing new released, no lapsed hold confirmed', async () => {
    const showId = await newShow(100);
    const old = await placeHolds(showId, Array(50).fill(2), 1);
    await waitUntilLapsed(showId);
    // The house is full of lapsed holds. At once: four sweepers, sixty new single-seat claims
    // (each finds no AVAILABLE seat and releases lapsed holds itself), and a confirm of every
    // lapsed hold (which must expire it instead).
    const handles: DbHandle[] = Array.from({ length: 4 }, () =>
      createDb({ connectionString: ctx.databaseUrl, max: 3, applicationName: 'expiry-test' }),
    );
    const layout = (await loadLayout(ctx.db, showId))!;
    const settings: DecideSettings = { holdSeconds: 600, maxSeatsPerCustomer: 100, waitlistOfferSeconds: 900 };
    const fresh = Array.from({ length: 60 }, () => request(showId, 1));
    try {
      const [sweeps, claims, confirms] = await Promise.all([
        Promise.all(handles.map(({ db }) => db.transaction((tx) => releaseLapsedHolds(tx, { limit: 5 })).then(() => sweepLapsedHolds(db, { offerSeconds: 900 }, 5)))),
        Promise.all(fresh.map((job, i) => decideUntilDecided(handles[i % handles.length]!, layout, job, settings))),
        Promise.all(old.ids.map((id, i) => confirmBooking(handles[i % handles.length]!.db, id, true, { offerSeconds: 900 }))),
      ]);
      expect(sweeps).toHaveLength(4);
      expect(claims.map((decision) => decision.booking.status)).toEqual(Array(60).fill('HELD'));
      expect(confirms.map((outcome) => (outcome.kind === 'not_found' ? 'not_found' : `${outcome.kind}:${outcome.booking.status}`))).toEqual(
        Array(50).fill('rejected:EXPIRED'),
      );
    } finally {
      await Promise.all(handles.map(({ pool }) => pool.end()));
    }
    // Every old hold expired once (its seats went to the new claims or back to AVAILABLE), and
    // every new hold still has its seat: no late sweep released a seat that changed hands.
    expect(await counts(showId)).toEqual({ 'booking:EXPIRED': 50, 'booking:HELD': 60, 'seat:HELD': 60, 'seat:AVAILABLE': 40 });
    expect(await auditProblems(showId)).toEqual([]);
  });
});

describe('claims after a wave of lapsed holds', () => {
  it('resell every lapsed seat, and a hold another transaction is releasing is not SOLD_OUT', async () => {
    // The next sweep is an hour away (the schedule's first, immediate one runs before the holds
    // are placed): the claims themselves must release the lapsed holds.
    const env = { EXPIRY_INTERVAL_SECONDS: '3600', HOLD_SECONDS: '600' };
    const workers = await Promise.all([1, 2].map(() => ctx.startWorker(env)));
    await waitFor(async () => {
      const sweeps = await workers[0]!.maintenanceQueue.getJobs(['completed']);
      return sweeps.some((job) => job.name === 'expire-holds') ? true : undefined;
    }, 'the first scheduled sweep');
    const holds = 50;
    const showId = await newShow(holds * 2);
    await placeHolds(showId, Array(holds).fill(2), 1);
    await waitUntilLapsed(showId);
    const queue = openQueue(QUEUES.bookings, ctx.redis, ctx.config.QUEUE_PREFIX);
    // Three lapsed holds (six seats) locked by an open transaction, as a sweep or a confirm in
    // the middle of expiring them would hold them: the claims cannot release those themselves.
    const blocker = new pg.Client({ connectionString: ctx.databaseUrl });
    await blocker.connect();
    try {
      await blocker.query('BEGIN');
      const locked = await blocker.query(`SELECT id FROM bookings WHERE show_id = $1 AND status = 'HELD' ORDER BY id LIMIT 3 FOR UPDATE`, [showId]);
      expect(locked.rowCount).toBe(3);

      const jobs = Array.from({ length: holds * 2 }, () => request(showId, 1));
      const ids = jobs.map((job) => job.id);
      // One request per batch job (job id = booking id), so each request's retries can be watched.
      await queue.addBulk(
        jobs.map((job) => ({ name: 'process-bookings', data: { requests: [job] }, opts: { ...JOBS['process-bookings'].options, jobId: job.id } })),
      );
      const decidedCount = async () =>
        (await ctx.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM bookings WHERE id = ANY($1::uuid[])', [ids])).rows[0]!.n;
      await waitFor(async () => ((await decidedCount()) >= ids.length - 6 ? true : undefined), 'the free seats to be resold');
      // The last six wait: each exhausts its in-worker rounds and goes back to BullMQ, undecided.
      await waitFor(async () => {
        const waiting = await Promise.all(ids.map((id) => queue.getJob(id)));
        const stuck = waiting.filter((job) => job && !job.finishedOn);
        return stuck.length <= 6 && stuck.every((job) => job!.attemptsMade >= 1) ? true : undefined;
      }, 'the last six requests to be retried');
      // 94 new holds, the 3 locked lapsed ones, and not one SOLD_OUT.
      expect(await counts(showId)).toEqual({ 'booking:HELD': holds * 2 - 6 + 3, 'booking:EXPIRED': holds - 3, 'seat:HELD': holds * 2 });

      await blocker.query('ROLLBACK');
      await waitFor(async () => ((await decidedCount()) === ids.length ? true : undefined), 'every decision');
      expect(await counts(showId)).toEqual({ 'booking:EXPIRED': holds, 'booking:HELD': holds * 2, 'seat:HELD': holds * 2 });
      expect(await auditProblems(showId)).toEqual([]);
    } finally {
      await blocker.query('ROLLBACK').catch(() => {});
      await blocker.end();
      await queue.close();
      await Promise.all(workers.map((worker) => worker.close()));
    }
  });
});

describe('a lapsed hold before the sweep reaches it', () => {
  it('its seats are for sale again, to a request naming them as to best-available ones', async () => {
    const showId = await newShow(6);
    const layout = (await loadLayout(ctx.db, showId))!;
    const settings: DecideSettings = { holdSeconds: 600, maxSeatsPerCustomer: 10, waitlistOfferSeconds: 900 };
    const decide = async (job: BookingJob) => (await decideBookings(ctx.db, layout, [job], settings)).get(job.id);
    const lapsing = await placeHolds(showId, [2], 1); // seats 1 and 2, for one second
    expect(await decide({ ...request(showId, 1), seats: ['3'] })).toMatchObject({ booking: { status: 'HELD', seats: ['3'] } });
    await waitFor(async () => {
      const { rows } = await ctx.pool.query(`SELECT 1 FROM bookings WHERE id = $1 AND hold_expires_at <= now()`, [lapsing.ids[0]]);
      return rows.length === 1 ? true : undefined;
    }, 'the hold to lapse');
    // Unswept: still HELD in the table, but listed AVAILABLE, so a buyer may pick it.
    expect((await counts(showId))['seat:HELD']).toBe(3);
    expect((await listSeats(ctx.db, showId)).map((seat) => seat.status)).toEqual(['AVAILABLE', 'AVAILABLE', 'HELD', 'AVAILABLE', 'AVAILABLE', 'AVAILABLE']);

    expect(await decide({ ...request(showId, 1), seats: ['2'] })).toMatchObject({ booking: { status: 'HELD', seats: ['2'] } });
    // A live hold is still taken.
    expect(await decide({ ...request(showId, 1), seats: ['3'] })).toMatchObject({ booking: { status: 'FAILED', reason: 'SEATS_UNAVAILABLE' } });
    expect(await decide(request(showId, 4))).toMatchObject({ booking: { status: 'HELD', seats: ['1', '4', '5', '6'] } });
    expect(await counts(showId)).toEqual({ 'booking:EXPIRED': 1, 'booking:HELD': 3, 'booking:FAILED': 1, 'seat:HELD': 6 });
    expect(await auditProblems(showId)).toEqual([]);
  });
});

describe('the expiry schedule with three workers', () => {
  it('is one scheduler in Redis and one sweep per tick, and the sweeps release each lapsed hold once', async () => {
    // Sweeps release lapsed holds of every show: end the holds earlier tests left, so the
    // sweeps' counts below are this test's holds alone.
    await ctx.pool.query(`UPDATE seats SET status = 'AVAILABLE', booking_id = NULL, hold_expires_at = NULL WHERE status = 'HELD'`);
    await ctx.pool.query(`UPDATE bookings SET status = 'CANCELLED', updated_at = now() WHERE status = 'HELD'`);
    const showId = await newShow(50);
    // Earlier tests of this file ran workers with another interval: count only this test's sweeps.
    const startedAt = Date.now();
    const interval = 1_000;
    const env = { EXPIRY_INTERVAL_SECONDS: String(interval / 1_000) };
    // Three worker processes' worth, registering the schedule at the same moment.
    const workers: RunningWorker[] = await Promise.all([1, 2, 3].map(() => ctx.startWorker(env)));
    const queue = workers[0]!.maintenanceQueue;

    const schedulers = (await queue.getJobSchedulers()).filter((scheduler) => scheduler.key === 'expire-holds');
    expect(schedulers).toHaveLength(1);
    expect(schedulers[0]).toMatchObject({ key: 'expire-holds', every: interval });
    // Holds that lapse while the schedule runs: the sweeps must release each exactly once.
    const held = await placeHolds(showId, Array(10).fill(2), 1);

    const sweepJobs = async () =>
      (await queue.getJobs(['completed', 'failed', 'active', 'delayed', 'waiting', 'prioritized'])).filter(
        (job) => job.name === 'expire-holds' && job.timestamp >= startedAt,
      );
    const completedSweeps = () =>
      sweepJobs().then((jobs) => jobs.filter((job) => job.finishedOn && !job.failedReason).sort((a, b) => a.finishedOn! - b.finishedOn!));
    const firstBatch = await waitFor(async () => {
      const done = await completedSweeps();
      return done.length >= 3 ? done : undefined;
    }, 'three sweeps');

    // A fourth worker registering later (a restart, a scale-up) changes nothing either.
    workers.push(await ctx.startWorker(env));
    expect((await queue.getJobSchedulers()).filter((scheduler) => scheduler.key === 'expire-holds')).toHaveLength(1);
    const done = await waitFor(async () => {
      const jobs = await completedSweeps();
      return jobs.length >= firstBatch.length + 3 ? jobs : undefined;
    }, 'three more sweeps');

    // One job per tick: the tick is in the job id (repeat:<scheduler>:<millis>); no two jobs
    // share one, and consecutive ticks are a whole interval apart.
    const ticks = done.map((job: Job) => Number(/^repeat:expire-holds:(\d+)$/.exec(job.id ?? '')?.[1])).sort((a, b) => a - b);
    expect(ticks.every(Number.isFinite)).toBe(true);
    expect(new Set(ticks).size).toBe(ticks.length);
    const gaps = ticks.slice(1).map((tick, i) => tick - ticks[i]!);
    expect(gaps.every((gap) => gap >= interval)).toBe(true);
    // At most one sweep is ever pending: the next tick.
    const pending = (await sweepJobs()).filter((job) => !job.finishedOn);
    expect(pending.length).toBeLessThanOrEqual(1);

    // The holds lapsed meanwhile and were released once, by whichever sweeps ran.
    await waitFor(async () => ((await counts(showId))['booking:EXPIRED'] === 10 ? true : undefined), 'the sweeps to expire the holds');
    const released = (await completedSweeps()).reduce((sum, job) => sum + (job.returnvalue as ExpiryResult).bookings, 0);
    expect(released).toBe(held.ids.length);
    expect(await counts(showId)).toEqual({ 'booking:EXPIRED': 10, 'seat:AVAILABLE': 50 });
    console.info(`schedule: ${ticks.length} sweeps on ticks ${gaps.join('/')} ms apart with 3-4 workers, ${released} holds released once`);
  });
});
