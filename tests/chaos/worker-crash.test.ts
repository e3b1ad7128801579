import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QUEUES } from '../../shared/queue/catalog.js';
import { LOCK_DURATION_MS, STALLED_INTERVAL_MS } from '../../services/worker/worker.js';
import { waitUntil, type ServiceProcess } from '../support/processes.js';
import {
  auditRun,
  auditViolations,
  BookingClient,
  collectEvents,
  createGaShow,
  createWorld,
  mixedBodies,
  NO_VIOLATIONS,
  printLogsOnFailure,
  recordFigures,
  runLoad,
  sized,
  type World,
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
/** A killed worker's jobs must run again within lock expiry plus two stalled checks, plus slack for a loaded CI box. */
const RECOVERY_BOUND_MS = LOCK_DURATION_MS + 2 * STALLED_INTERVAL_MS + 10_000;

let world: World;

beforeAll(async () => {
  world = await createWorld({ serviceOverrides: { HOLD_SECONDS: '6', EXPIRY_INTERVAL_SECONDS: '2' } });
});
afterAll(async () => world?.close());

describe('chaos: worker crash', () => {
  it(
    `SIGKILLs a worker ${KILLS} times mid-burst; stalled jobs run again within seconds; nothing lost or oversold`,
    async () => {
      printLogsOnFailure(world);
      expect(LOCK_DURATION_MS).toBeLessThanOrEqual(10_000);
      expect(STALLED_INTERVAL_MS).toBeLessThanOrEqual(5_000);
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

      const client = new BookingClient(() => [api.url!]);
      let killing = true;
      const load = runLoad({
        client,
        body: mixedBodies(showIds, 'crash'),
        ratePerSecond: RATE,
        concurrency: 48,
        stop: () => !killing,
      });

      /** Time from a kill until every job that was active at that moment has finished. */
      const recoveries: Promise<number>[] = [];
      const trackRecovery = (ids: string[], killedAt: number) =>
        waitUntil(
          'jobs of a killed worker to finish',
          async () => {
            const pipeline = redis.pipeline();
            for (const id of ids) pipeline.hget(bookingQueue.toKey(id), 'finishedOn');
            const results = (await pipeline.exec()) ?? [];
            return results.every(([, finishedOn]) => Boolean(finishedOn)) ? Date.now() - killedAt : undefined;
          },
          120_000,
          100,
        );

      let killsInTransaction = 0;
      let jobsActiveAtKills = 0;
      for (let kill = 0; kill < KILLS; kill++) {
        const index = kill % WORKERS;
        const victim = workers[index]!;
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
        recoveries.push(trackRecovery(active, killedAt));
        workers[index] = await processes.startWorker({ DATABASE_URL: databaseUrlFor(workerNames[index]!) });
      }
      killing = false;
      const { started, seconds } = await load;
      const recoveryMs = await Promise.all(recoveries);

      const report = await auditRun({
        pool: ctx.pool,
        showIds,
        acknowledged: client.acknowledged.values(),
        bookingQueue,
        maintenanceQueue: world.maintenanceQueue,
        redis: world.redis,
        decideTimeoutMs: sized({ ci: 45_000, full: 90_000 }),
      });
      await stalled.close();
      await client.close();

      const sorted = [...recoveryMs].sort((a, b) => a - b);
      recordFigures('worker-crash', {
        workers: WORKERS,
        kills: KILLS,
        kills_inside_transaction: killsInTransaction,
        jobs_active_at_kills: jobsActiveAtKills,
        stalled_jobs_recovered: stalled.ids.length,
        recovery_ms_median: sorted[Math.floor(sorted.length / 2)],
        recovery_ms_max: sorted.at(-1),
        lock_duration_ms: LOCK_DURATION_MS,
        stalled_interval_ms: STALLED_INTERVAL_MS,
        requests: started,
        load_seconds: seconds,
        client: client.stats,
        audit: report,
      });

      expect(client.samples).toEqual([]);
      expect(client.stats).toMatchObject({ gaveUp: 0, serverErrors: 0, clientErrors: 0, idMismatches: 0 });
      expect(auditViolations(report)).toEqual(NO_VIOLATIONS);
      expect(report.acknowledged).toBe(started);
      // The kills really hit work in flight, and every stalled job ran again within the bound.
      expect(killsInTransaction).toBeGreaterThan(0);
      expect(stalled.ids.length).toBeGreaterThan(0);
      expect(Math.max(...recoveryMs)).toBeLessThanOrEqual(RECOVERY_BOUND_MS);
    },
    sized({ ci: 150_000, full: 600_000 }),
  );
});
