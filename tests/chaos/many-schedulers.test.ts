import { QueueEvents } from 'bullmq';
import { describe, expect, it, onTestFinished } from 'vitest';
import { sweepLapsedHolds } from '../../shared/booking/expire.js';
import { QUEUES } from '../../shared/queue/catalog.js';
import { waitUntil, type ServiceProcess } from '../support/processes.js';
import {
  BookingClient,
  createGaShow,
  mixedBodies,
  openWorld,
  printLogsOnFailure,
  recordFigures,
  redisOptions,
  runLoad,
  sized,
} from './harness.js';

/**
 * Fault 5: many schedulers. Three worker processes each register the expiry schedule at
 * startup (and one re-registers it when restarted), yet BullMQ keeps one schedule: exactly one
 * sweep per tick. Holds lapse while the scheduled sweeps and extra sweeps started by the test
 * overlap; each lapsed hold is released exactly once.
 */

const HOLDS = sized({ ci: 300, full: 1_000 });
const TICKS = sized({ ci: 6, full: 20 });
const INTERVAL_MS = 1_000;
/** Extra sweeps the test runs at the same time as the scheduled ones. */
const EXTRA_SWEEPERS = 4;

const world = await openWorld({
  serviceOverrides: { HOLD_SECONDS: '3', EXPIRY_INTERVAL_SECONDS: String(INTERVAL_MS / 1_000) },
});

type Sweep = { jobId: string; bookings: number; seats: number; at: number };

describe('chaos: many schedulers', () => {
  it(
    'three workers registering the expiry schedule: one sweep per tick, overlapping sweeps release each hold once',
    async () => {
      printLogsOnFailure(world);
      const { ctx, processes, maintenanceQueue } = world;
      // The sweep's schedule (the queue also holds the intake recount's).
      const sweepSchedulers = async () => (await maintenanceQueue.getJobSchedulers()).filter((scheduler) => scheduler.key === 'expire-holds').length;
      const events = new QueueEvents(QUEUES.maintenance, { connection: redisOptions(world.redisUrl), prefix: ctx.config.QUEUE_PREFIX });
      // Also closed should the test fail first: left open, it would fail the teardown's leak check.
      onTestFinished(() => events.close());
      events.on('error', () => {});
      const sweeps: Sweep[] = [];
      // Scheduled job ids are "repeat:<scheduler>:<tick>": the recount's ticks are not sweeps.
      const isSweep = (jobId: string) => jobId.includes(':expire-holds:');
      events.on('completed', ({ jobId, returnvalue }: { jobId: string; returnvalue: unknown }) => {
        if (!isSweep(jobId)) return;
        const result = (typeof returnvalue === 'string' ? JSON.parse(returnvalue) : returnvalue) as { bookings: number; seats: number };
        sweeps.push({ jobId, bookings: result.bookings, seats: result.seats, at: Date.now() });
      });
      await events.waitUntilReady();

      const workers: ServiceProcess[] = await Promise.all([processes.startWorker(), processes.startWorker(), processes.startWorker()]);
      const api = await processes.startApi();
      expect(await sweepSchedulers()).toBe(1);

      // Holds that all lapse at about the same moment.
      const show = await createGaShow(ctx.db, 2 * HOLDS);
      const client = new BookingClient(() => [api.url!]);
      await runLoad({ client, body: mixedBodies([show.id], 'sched'), ratePerSecond: 100_000, concurrency: 50, count: HOLDS });
      const ids = [...client.acknowledged.values()].map((ack) => ack.id);
      const count = async (sql: string) => (await ctx.pool.query<{ n: number }>(sql, [show.id])).rows[0]!.n;
      await waitUntil('every hold placed', async () => (await count(`SELECT count(*)::int AS n FROM bookings WHERE show_id = $1`)) === ids.length, 60_000);
      // On a slow machine the first holds may lapse (and be swept) before the last is placed:
      // count them too. Expiry keeps seat_ids, and every sweep is in `sweeps` from the start.
      const held = await count(`SELECT count(*)::int AS n FROM bookings WHERE show_id = $1 AND status IN ('HELD', 'EXPIRED')`);
      const seatsHeld = await count(`SELECT coalesce(sum(cardinality(seat_ids)), 0)::int AS n FROM bookings WHERE show_id = $1 AND status IN ('HELD', 'EXPIRED')`);

      // Overlap: whenever a scheduled sweep starts, the test starts more sweeps at the same
      // moment, from several connections, until every hold is released.
      const sweepsBefore = sweeps.length;
      const extra = { bookings: 0, seats: 0 };
      const extraRuns: Promise<void>[] = [];
      let overlapping = false;
      events.on('active', ({ jobId }: { jobId: string }) => {
        if (!overlapping || !isSweep(jobId)) return;
        for (let sweeper = 0; sweeper < EXTRA_SWEEPERS; sweeper++) {
          extraRuns.push(
            sweepLapsedHolds(ctx.db, { offerSeconds: 900 }, 25).then((released) => {
              extra.bookings += released.bookings;
              extra.seats += released.seats;
            }),
          );
        }
      });
      await waitUntil('the first hold to lapse', async () => (await count(`SELECT count(*)::int AS n FROM bookings WHERE show_id = $1 AND hold_expires_at <= now()`)) > 0, 30_000);
      overlapping = true;
      await waitUntil('every hold released', async () => (await count(`SELECT count(*)::int AS n FROM bookings WHERE show_id = $1 AND status = 'HELD'`)) === 0, 30_000, 100);
      overlapping = false;
      await Promise.all(extraRuns);
      // Scheduled sweeps that were already running finish within a tick or two.
      await waitUntil('two more scheduled sweeps', () => sweeps.length >= sweepsBefore + 2 && sweeps, 30_000);

      // A worker restarts mid-way and registers the schedule again.
      const ticksFrom = sweeps.length;
      await workers[0]!.stop('SIGTERM');
      workers[0] = await processes.startWorker();
      await waitUntil(`${TICKS} more ticks`, () => sweeps.length >= ticksFrom + TICKS, TICKS * INTERVAL_MS * 10);
      await events.close();
      await client.close();

      const scheduled = sweeps.reduce((sum, sweep) => ({ bookings: sum.bookings + sweep.bookings, seats: sum.seats + sweep.seats }), { bookings: 0, seats: 0 });
      const expired = await count(`SELECT count(*)::int AS n FROM bookings WHERE show_id = $1 AND status = 'EXPIRED'`);
      const seatsTaken = await count(`SELECT count(*)::int AS n FROM seats WHERE show_id = $1 AND status <> 'AVAILABLE'`);
      // Scheduled job ids carry the tick they belong to: the same id twice would be two sweeps of one tick.
      const jobIds = sweeps.map((sweep) => sweep.jobId);
      const ticks = [...new Set(jobIds)];
      const tickTimes = ticks.map((id) => Number(/(\d{10,})$/.exec(id)?.[1] ?? Number.NaN)).sort((a, b) => a - b);
      const gaps = tickTimes.slice(1).map((time, index) => time - tickTimes[index]!);
      const windowSweeps = sweeps.slice(ticksFrom);
      const windowSeconds = (windowSweeps.at(-1)!.at - sweeps[ticksFrom - 1]!.at) / 1_000;

      recordFigures('many-schedulers', {
        workers: 3,
        schedulers_registered: await sweepSchedulers(),
        interval_ms: INTERVAL_MS,
        holds: held,
        seats_held: seatsHeld,
        released_by_scheduled_sweeps: scheduled,
        released_by_extra_sweeps: extra,
        extra_sweepers_per_tick: EXTRA_SWEEPERS,
        extra_sweeps_run: extraRuns.length,
        expired_bookings: expired,
        sweeps_completed: sweeps.length,
        distinct_ticks: ticks.length,
        min_gap_between_ticks_ms: Math.min(...gaps),
        sweeps_in_window: windowSweeps.length,
        window_seconds: windowSeconds,
        sample_job_id: jobIds[0],
        client: client.stats,
      });

      expect(client.stats).toMatchObject({ acknowledged: HOLDS, gaveUp: 0, serverErrors: 0, clientErrors: 0 });
      expect(await sweepSchedulers()).toBe(1);
      // One sweep per tick: no tick ran twice, and ticks are at least one interval apart.
      expect(jobIds.length).toBe(ticks.length);
      expect(tickTimes.every(Number.isFinite)).toBe(true);
      expect(Math.min(...gaps)).toBeGreaterThanOrEqual(INTERVAL_MS);
      // ...and the schedule kept ticking through the restart (no gap of many intervals).
      expect(windowSweeps.length).toBeLessThanOrEqual(Math.ceil(windowSeconds * 1_000 / INTERVAL_MS) + 1);
      // Each lapsed hold released exactly once, whoever swept it.
      expect(held).toBe(HOLDS);
      expect(expired).toBe(held);
      expect(scheduled.bookings + extra.bookings).toBe(held);
      expect(scheduled.seats + extra.seats).toBe(seatsHeld);
      expect(seatsTaken).toBe(0);
    },
    // A bound on a run that must end, not a speed check: CI shares two cores with other test files.
    sized({ ci: 240_000, full: 600_000 }),
  );
});
