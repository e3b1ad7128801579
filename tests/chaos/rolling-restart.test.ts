import { describe, expect, it, onTestFinished } from 'vitest';
import { QUEUES } from '../../shared/queue/catalog.js';
import { waitUntil, type Exit, type ServiceProcess } from '../support/processes.js';
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
 * Fault 4: a rolling deploy mid-burst. Two API replicas sit behind the client's round robin
 * (a stand-in for a load balancer) and two workers share the queue; each process in turn gets
 * SIGTERM and is replaced. A worker finishes its in-flight jobs before it exits (nothing
 * stalls); an API finishes its in-flight requests. Clients may see a refused or closed
 * connection while a replica goes away (counted apart: no HTTP answer at all, retried on the
 * other replica), and never a 5xx other than 503 with Retry-After.
 */

const ROUNDS = sized({ ci: 1, full: 3 });
const RATE = sized({ ci: 100, full: 200 });

const world = await openWorld({
  serviceOverrides: { HOLD_SECONDS: '6', EXPIRY_INTERVAL_SECONDS: '2', SHUTDOWN_TIMEOUT_SECONDS: '20' },
});

type Restart = { name: string; exit: Exit; drainMs: number };

describe('chaos: rolling restart', () => {
  it(
    `SIGTERMs and replaces 2 APIs and 2 workers ${ROUNDS}x mid-burst: in-flight work finishes, nothing stalls, no 5xx`,
    async () => {
      printLogsOnFailure(world);
      const { ctx, processes } = world;
      const shows = [await createGaShow(ctx.db, 4_000), await createGaShow(ctx.db, 4_000)];
      const showIds = shows.map((show) => show.id);
      const apis: ServiceProcess[] = [await processes.startApi(), await processes.startApi()];
      const workers: ServiceProcess[] = [await processes.startWorker(), await processes.startWorker()];
      const stalled = await collectEvents(QUEUES.bookings, { redisUrl: world.redisUrl, prefix: ctx.config.QUEUE_PREFIX }, 'stalled');
      // Also closed should the test fail first: left open, it would fail the teardown's leak check.
      onTestFinished(() => stalled.close());

      const client = new BookingClient(() => apis.map((api) => api.url!));
      let running = true;
      const load = runLoad({ client, body: mixedBodies(showIds, 'roll'), ratePerSecond: RATE, concurrency: 48, stop: () => !running });
      await waitUntil('the first acknowledgements', () => client.stats.acknowledged >= 100, 30_000);

      const restarts: Restart[] = [];
      const spikes: Promise<unknown>[] = [];
      /**
       * SIGTERM one process in the middle of a spike (many requests and jobs in flight), wait
       * for it to exit, and put a fresh one in its place.
       */
      const replace = async (list: ServiceProcess[], index: number, start: () => Promise<ServiceProcess>) => {
        const old = list[index]!;
        const acknowledgedBeforeSpike = client.stats.acknowledged;
        spikes.push(spike(client, showIds, `roll-spike-${restarts.length}`));
        await waitUntil('the spike to be under way', () => client.stats.acknowledged >= acknowledgedBeforeSpike + 20, 30_000, 1);
        const activeBefore = await world.bookingQueue.getActiveCount();
        const signalledAt = Date.now();
        old.signal('SIGTERM');
        const exit = await old.exited;
        restarts.push({ name: `${old.name} (active jobs in the queue at SIGTERM: ${activeBefore})`, exit, drainMs: exit.at - signalledAt });
        list[index] = await start();
        // Let traffic reach the new process before the next one goes.
        const acknowledged = client.stats.acknowledged;
        await waitUntil('traffic after a restart', () => client.stats.acknowledged >= acknowledged + 50, 30_000);
      };
      for (let round = 0; round < ROUNDS; round++) {
        for (let index = 0; index < apis.length; index++) await replace(apis, index, () => processes.startApi());
        for (let index = 0; index < workers.length; index++) await replace(workers, index, () => processes.startWorker());
      }
      running = false;
      const { started, seconds } = await load;
      await Promise.all(spikes);

      const report = await auditWorld(world, {
        showIds,
        acknowledged: client.acknowledged.values(),
        decideTimeoutMs: sized({ ci: 45_000, full: 90_000 }),
      });
      await stalled.close();
      await client.close();

      recordFigures('rolling-restart', {
        rounds: ROUNDS,
        restarts: restarts.map((restart) => ({ name: restart.name, code: restart.exit.code, signal: restart.exit.signal, drain_ms: restart.drainMs })),
        stalled_jobs: stalled.ids.length,
        requests: client.stats.bookings,
        load_seconds: seconds,
        client: client.stats,
        connection_error_samples: client.connectionSamples,
        audit: report,
      });

      expect(client.samples).toEqual([]);
      expect(client.stats).toMatchObject({ gaveUp: 0, serverErrors: 0, clientErrors: 0, idMismatches: 0 });
      // Every process shut down cleanly (exit 0 after draining, not the deadline's exit 1).
      expect(restarts.map((restart) => restart.exit.code)).toEqual(restarts.map(() => 0));
      // A graceful worker finishes its jobs: none is left for the stalled check.
      expect(stalled.ids).toEqual([]);
      expect(auditViolations(report)).toEqual(NO_VIOLATIONS);
      expect(report.acknowledged).toBe(client.stats.bookings);
      expect(started).toBeGreaterThan(0);
    },
    // A bound on a run that must end, not a speed check: CI shares two cores with other test files.
    sized({ ci: 300_000, full: 900_000 }),
  );
});
