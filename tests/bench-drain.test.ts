import { afterAll, expect, it } from 'vitest';
import { formatReport } from '../bench/lib/report.js';
import { runBurst } from '../bench/lib/run-burst.js';
import { scenarios } from '../bench/lib/scenarios.js';
import { startServices, type RunningServices } from '../bench/lib/services.js';
import { burstOptions } from './support/burst.js';
import { openTestContext } from './support/context.js';
import { freePort, serviceEnv } from './support/processes.js';
import { tempDir } from './support/temp-dir.js';

/**
 * The bench's drain (issue 16) at its quick size, on the bench's own services (an API and a
 * worker process): every request queued while no worker runs, the worker started once all are
 * accepted, and the rate measured from the first decision to the last in the database.
 */

const ctx = await openTestContext();
const dir = tempDir('bench-drain-');
let services: RunningServices | undefined;
afterAll(async () => services?.stop());

it('queues every request with no worker running, then the started worker decides them all', async () => {
  const drain = scenarios(true).drain;
  expect(drain.workersAfterAccepting).toBe(true);
  const seats = 'seats' in drain.shows ? drain.shows.seats : 0;
  const port = await freePort();
  services = await startServices({
    env: serviceEnv(ctx.config, { PORT: String(port), DB_POOL_SIZE: '4', RATE_LIMIT_PER_MINUTE: '0' }),
    apis: 1,
    workers: 1,
    logDir: dir,
    profileDir: null,
    deferWorkers: true,
  });
  expect(services.workersStarted).toBe(false);

  let decidedWhenStarting: number | undefined;
  const running = services;
  const report = await runBurst(
    burstOptions(running.urls[0]!, ctx, 16, '--create-show', '--seats', String(seats), '--requests', String(drain.requests), '--concurrency', String(drain.inFlight), '--cancel-share', '0'),
    null,
    {
      beforeDecisions: async () => {
        // Every request answered: all accepted and queued, and nothing has reached Postgres.
        decidedWhenStarting = (await ctx.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM bookings')).rows[0]!.n;
        await running.startWorkers();
        expect(running.workersStarted).toBe(true);
      },
    },
  );

  expect(decidedWhenStarting).toBe(0);
  expect(report.requests).toMatchObject({ planned: drain.requests, accepted: drain.requests, decided: drain.requests, undecided: 0 });
  expect(report.outcomes).toEqual({ HELD: seats, 'FAILED:SOLD_OUT': drain.requests - seats });
  const figures = report.drain!;
  expect(figures.decidedBeforeWorkers).toBe(0);
  // The worker's process start-up comes between its start and the first decision.
  expect(figures.startToFirstDecisionMs).toBeGreaterThan(0);
  expect(figures.firstToLastDecisionMs).toBeGreaterThan(0);
  expect(figures.decisionsPerSecond).toBeCloseTo(drain.requests / (figures.firstToLastDecisionMs / 1_000), 3);
  expect(report.verdict).toBe('pass');
  expect(formatReport(report)).toMatch(/Drain: [\d,.]+ decisions\/s from the first decision to the last .*decided before them: 0/);
}, 300_000);
