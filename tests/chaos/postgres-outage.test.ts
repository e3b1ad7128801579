import { describe, expect, it } from 'vitest';
import { TcpProxy } from '../support/tcp-proxy.js';
import { waitUntil } from '../support/processes.js';
import {
  auditWorld,
  auditViolations,
  BookingClient,
  createGaShow,
  mixedBodies,
  NO_VIOLATIONS,
  openWorld,
  printLogsOnFailure,
  recordFigures,
  runLoad,
  sized,
} from './harness.js';

/**
 * Fault 3: Postgres becomes unreachable mid-burst. The services reach it only through a TCP
 * proxy the test controls; cutting it resets every open connection and refuses new ones. The
 * API keeps accepting (show layouts are cached, the queue is in Redis), workers fail their
 * transactions and retry with backoff, and once Postgres is back every request is decided,
 * none of them FAILED because of the outage.
 */

const OUTAGE_MS = sized({ ci: 9_000, full: 30_000 });
const LEAD_MS = sized({ ci: 2_000, full: 5_000 });
const RATE = sized({ ci: 80, full: 100 });
/** Enough requests to run through the outage and a little after it. */
const REQUESTS = Math.round((RATE * (LEAD_MS + OUTAGE_MS + LEAD_MS)) / 1_000);

const world = await openWorld({});
const target = new URL(world.ctx.databaseUrl);
const proxy = await TcpProxy.start({ host: target.hostname, port: Number(target.port || 5432) });
world.afterClose(() => proxy.close());

describe('chaos: Postgres outage', () => {
  it(
    `cuts Postgres for ${OUTAGE_MS / 1_000} s mid-burst: the API keeps accepting, workers retry, nothing FAILED, all decided`,
    async () => {
      printLogsOnFailure(world);
      const { ctx, processes, bookingQueue } = world;
      // Supply exceeds demand (at most 2 seats a request), so every request must end HELD.
      const shows = [await createGaShow(ctx.db, REQUESTS), await createGaShow(ctx.db, REQUESTS)];
      const showIds = shows.map((show) => show.id);
      const throughProxy = {
        DATABASE_URL: proxy.route(ctx.databaseUrl),
        HOLD_SECONDS: '6',
        EXPIRY_INTERVAL_SECONDS: '2',
      };
      const api = await processes.startApi(throughProxy);
      const workers = [await processes.startWorker(throughProxy), await processes.startWorker(throughProxy)];

      const client = new BookingClient(() => [api.url!]);
      const load = runLoad({ client, body: mixedBodies(showIds, 'pg'), ratePerSecond: RATE, concurrency: 32, count: REQUESTS });

      // Warm up: both shows' layouts cached in the API and decisions flowing.
      await waitUntil(
        'the first decisions',
        async () => {
          const rows = await ctx.pool.query<{ n: number }>('SELECT count(DISTINCT show_id)::int AS n FROM bookings WHERE show_id = ANY($1::uuid[])', [showIds]);
          return rows.rows[0]!.n === showIds.length;
        },
        30_000,
      );
      const acknowledgedBeforeCut = client.stats.acknowledged;
      proxy.cut();
      const cutAt = Date.now();
      const readyDuring: number[] = [];
      // The outage itself lasts a fixed time: that is the fault being injected, not a wait.
      while (Date.now() - cutAt < OUTAGE_MS) {
        const ready = await fetch(`${api.url}/ready`).catch(() => undefined);
        if (ready) readyDuring.push(ready.status);
        await new Promise((done) => setTimeout(done, 500));
      }
      const restoredAt = Date.now();
      const acknowledgedDuringCut = client.stats.acknowledged - acknowledgedBeforeCut;
      proxy.restore();

      const { started, seconds } = await load;
      const auditStartedAt = Date.now();
      const report = await auditWorld(world, {
        showIds,
        acknowledged: client.acknowledged.values(),
        decideTimeoutMs: sized({ ci: 60_000, full: 90_000 }),
      });
      const answersDuringCut = client.answers.filter((answer) => answer.sentAt >= cutAt && answer.receivedAt <= restoredAt);

      // How hard the workers retried: attempts started per batch job (BullMQ's "ats").
      const finishedJobs = await bookingQueue.getJobs(['completed', 'failed']);
      const attempts = finishedJobs.map((job) => Math.max(1, job.attemptsStarted));
      const retried = attempts.filter((count) => count > 1).length;
      await client.close();

      recordFigures('postgres-outage', {
        outage_seconds: OUTAGE_MS / 1_000,
        requests: started,
        load_seconds: seconds,
        accepted_during_outage: acknowledgedDuringCut,
        answers_during_outage: answersDuringCut.length,
        non_202_during_outage: answersDuringCut.filter((answer) => answer.status !== 202).length,
        ready_503_during_outage: readyDuring.filter((status) => status === 503).length,
        connections_reset: proxy.stats.reset,
        connections_refused: proxy.stats.refused,
        jobs_retried: retried,
        max_attempts_per_job: Math.max(...attempts),
        all_decided_seconds_after_restore: (auditStartedAt + report.decideSeconds * 1_000 - restoredAt) / 1_000,
        client: client.stats,
        audit: report,
      });

      expect(client.samples).toEqual([]);
      expect(client.stats).toMatchObject({ gaveUp: 0, serverErrors: 0, clientErrors: 0, connectionErrors: 0, idMismatches: 0 });
      // The API kept accepting through the outage, and said it was not ready.
      expect(acknowledgedDuringCut).toBeGreaterThan(0);
      expect(answersDuringCut.every((answer) => answer.status === 202)).toBe(true);
      expect(readyDuring.length).toBeGreaterThan(0);
      expect(readyDuring.every((status) => status === 503)).toBe(true);
      // Workers really hit the outage, retried with backoff (not a tight loop), and survived it.
      expect(proxy.stats.reset + proxy.stats.refused).toBeGreaterThan(0);
      expect(retried).toBeGreaterThan(0);
      expect(Math.max(...attempts)).toBeLessThanOrEqual(Math.ceil(OUTAGE_MS / 1_000) + 5);
      expect(api.running && workers.every((worker) => worker.running)).toBe(true);
      // Nothing lost, nothing FAILED: every request was held once Postgres came back.
      expect(auditViolations(report)).toEqual(NO_VIOLATIONS);
      expect(report.statuses.FAILED ?? 0).toBe(0);
      expect(report.acknowledged).toBe(REQUESTS);
    },
    // A bound on a run that must end, not a speed check: CI shares two cores with other test files.
    sized({ ci: 300_000, full: 900_000 }),
  );
});
