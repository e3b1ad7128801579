import { describe, expect, it, onTestFinished } from 'vitest';
import { QUEUES } from '../../shared/queue/catalog.js';
import { LOCK_DURATION_MS, STALLED_INTERVAL_MS } from '../../services/worker/worker.js';
import { waitUntil, type ServiceProcess } from '../support/processes.js';
import {
  auditWorld,
  auditViolations,
  BookingClient,
  collectEvents,
  createGaShow,
  mixedBodies,
  NO_VIOLATIONS,
  openWorld,
  printLogsOnFailure,
  recordFigures,
  runLoad,
  sized,
  spike,
} from './harness.js';

/**
 * Fault 1: worker processes are SIGKILLed mid-burst, each time while the victim has a Postgres
 * transaction open, and restarted. The killed worker's jobs stay "active" with a lock nobody
 * renews; the stalled check of a live worker finds them once the lock lapses and they run
 * again (idempotently). The audit then proves nothing was lost, doubled or oversold.
 */

const KILLS = sized({ ci: 5, full: 20 });
const WORKERS = sized({ ci: 2, full: 3 });
const RATE = sized({ ci: 100, full: 200 });
const KILL_SPACING_MS = 3_000;
/** A killed worker's jobs must run again within lock expiry plus two stalled checks, plus slack for a loaded CI box. */
const RECOVERY_BOUND_MS = LOCK_DURATION_MS + 2 * STALLED_INTERVAL_MS + 10_000;

const world = await openWorld({ serviceOverrides: { HOLD_SECONDS: '6', EXPIRY_INTERVAL_SECONDS: '2' } });

describe('chaos: worker crash', () => {
  it(
    `SIGKILLs a worker ${KILLS} times mid-burst; stalled jobs run again within seconds; nothing lost or oversold`,
    async () => {
      printLogsOnFailure(world);
      const { ctx, processes, bookingQueue, redis } = world;
      const databaseUrlFor = (name: string) => {
        const url = new URL(ctx.databaseUrl);
        url.searchParams.set('application_name', name);
        return url.toString();
      };
      const shows = [await createGaShow(ctx.db, 4_000), await createGaShow(ctx.db, 4_000)];
      const showIds = shows.map((show) => show.id);
      const api = await processes.startApi();
      const workerNames = Array.from({ length: WORKERS }, (_, index) => `chaos-worker-${index}`);
      const workers: ServiceProcess[] = await Promise.all(
        workerNames.map((name) => processes.startWorker({ DATABASE_URL: databaseUrlFor(name) })),
      );
      const stalled = await collectEvents(QUEUES.bookings, { redisUrl: world.redisUrl, prefix: ctx.config.QUEUE_PREFIX }, 'stalled');
      // Also closed should the test fail first: left open, it would fail the teardown's leak check.
      onTestFinished(() => stalled.close());

      const client = new BookingClient(() => [api.url!]);
      let killing = true;
      const load = runLoad({
        client,
        body: mixedBodies(showIds, 'crash'),
        ratePerSecond: RATE,
        concurrency: 48,
        stop: () => !killing,
      });

      /** The jobs active right after each kill: the victim's (stuck) and the live workers' (done in ms). */
      const kills: Array<{ at: number; active: Set<string> }> = [];
      const spikes: Promise<unknown>[] = [];

      let killsInTransaction = 0;
      let jobsActiveAtKills = 0;
      for (let kill = 0; kill < KILLS; kill++) {
        const index = kill % WORKERS;
        const victim = workers[index]!;
        // A spike first, so the victim has many jobs in flight, not just the one in its transaction.
        const acknowledgedBeforeSpike = client.stats.acknowledged;
        spikes.push(spike(client, showIds, `crash-spike-${kill}`, 150));
        await waitUntil('the spike to be under way', () => client.stats.acknowledged >= acknowledgedBeforeSpike + 30, 30_000, 1);
        // Kill while the victim is inside a transaction (seats locked, booking rows written but
        // not committed): Postgres must roll it back and the job must run again elsewhere.
        const inTransaction = await waitUntil(
          `${workerNames[index]} inside a transaction`,
          async () => {
            const rows = await ctx.pool.query<{ n: number }>(
              `SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1 AND xact_start IS NOT NULL`,
              [workerNames[index]],
            );
            if (rows.rows[0]!.n === 0) return false;
            victim.signal('SIGKILL');
            return true;
          },
          10_000,
          2,
        ).catch(() => false);
        if (!inTransaction) victim.signal('SIGKILL');
        const killedAt = Date.now();
        await victim.exited;
        if (inTransaction) killsInTransaction += 1;
        const active = await redis.lrange(bookingQueue.keys.active!, 0, -1);
        jobsActiveAtKills += active.length;
        kills.push({ at: killedAt, active: new Set(active) });
        workers[index] = await processes.startWorker({ DATABASE_URL: databaseUrlFor(workerNames[index]!) });
        // A crash every few seconds is already far beyond any real failure rate; faster, and the
        // restarts themselves (TypeScript compiled at startup) would starve two cores.
        await waitUntil('the next kill slot', () => Date.now() - killedAt >= KILL_SPACING_MS, KILL_SPACING_MS + 1_000);
      }
      killing = false;
      const { started, seconds } = await load;
      await Promise.all(spikes);

      const report = await auditWorld(world, {
        showIds,
        acknowledged: client.acknowledged.values(),
        decideTimeoutMs: sized({ ci: 45_000, full: 90_000 }),
      });
      await stalled.close();
      await client.close();

      // Each stall is charged to the kill that caused it: the first kill, after the job's previous
      // stall if it had one, whose active jobs included it (a job stuck since an earlier kill is
      // still in the active list at later kills; a job can also be caught twice and stall twice).
      // Detection: kill -> stalled event (lock lapsed, found by a stalled check, back in the
      // wait list). Recovery: kill -> the job finished, run by another worker.
      const pipeline = redis.pipeline();
      for (const event of stalled.seen) pipeline.hmget(bookingQueue.toKey(event.id), 'finishedOn', 'stc');
      const jobStates = ((await pipeline.exec()) ?? []).map(([, fields]) => fields as [string | null, string | null]);
      const detectionMs: number[] = [];
      const recoveryMs: number[] = [];
      stalled.seen.forEach((event, index) => {
        const previous = stalled.seen.slice(0, index).filter((earlier) => earlier.id === event.id).at(-1)?.at ?? 0;
        const kill = kills.find((candidate) => candidate.at > previous && candidate.at <= event.at && candidate.active.has(event.id));
        if (!kill) return;
        detectionMs.push(event.at - kill.at);
        // Recovery is measured from a job's last stall (after an earlier one it ran again, and
        // was then caught by another kill).
        const last = !stalled.seen.slice(index + 1).some((later) => later.id === event.id);
        const finishedOn = Number(jobStates[index]?.[0]);
        if (last && finishedOn) recoveryMs.push(finishedOn - kill.at);
      });
      const stalledTwice = jobStates.filter(([, count]) => Number(count) >= 2).length;
      const percentile = (values: number[], p: number) => [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor(values.length * p))];
      recordFigures('worker-crash', {
        workers: WORKERS,
        kills: KILLS,
        kills_inside_transaction: killsInTransaction,
        jobs_active_at_kills: jobsActiveAtKills,
        stalled_jobs_recovered: stalled.ids.length,
        jobs_stalled_twice: stalledTwice,
        detection_ms: { median: percentile(detectionMs, 0.5), p95: percentile(detectionMs, 0.95), max: Math.max(...detectionMs) },
        recovery_ms: { median: percentile(recoveryMs, 0.5), p95: percentile(recoveryMs, 0.95), max: Math.max(...recoveryMs) },
        recovery_bound_ms: RECOVERY_BOUND_MS,
        lock_duration_ms: LOCK_DURATION_MS,
        stalled_interval_ms: STALLED_INTERVAL_MS,
        requests: client.stats.bookings,
        load_seconds: seconds,
        client: client.stats,
        audit: report,
      });

      expect(client.samples).toEqual([]);
      expect(client.stats).toMatchObject({ gaveUp: 0, serverErrors: 0, clientErrors: 0, idMismatches: 0 });
      expect(auditViolations(report)).toEqual(NO_VIOLATIONS);
      expect(report.acknowledged).toBe(client.stats.bookings);
      expect(started).toBeGreaterThan(0);
      // The kills really hit work in flight, and every stalled job ran again within the bound.
      expect(killsInTransaction).toBeGreaterThan(0);
      expect(stalled.ids.length).toBeGreaterThan(0);
      expect(detectionMs.length).toBe(stalled.seen.length);
      expect(Math.max(...detectionMs)).toBeLessThanOrEqual(LOCK_DURATION_MS + 2 * STALLED_INTERVAL_MS + 5_000);
      expect(Math.max(...recoveryMs)).toBeLessThanOrEqual(RECOVERY_BOUND_MS);
    },
    // A bound on a run that must end, not a speed check: CI shares two cores with other test files.
    sized({ ci: 300_000, full: 900_000 }),
  );
});
