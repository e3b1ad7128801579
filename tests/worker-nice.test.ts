import { getPriority } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, type TestContext } from './support/context.js';
import { ProcessRegistry, serviceEnv } from './support/processes.js';
import { call, createShow, waitForDecision } from './support/http.js';

/**
 * WORKER_NICE: a worker process started the way operators start it lowers its own CPU
 * priority, and still decides bookings; without the variable it keeps the niceness it was
 * started with.
 */

let ctx: TestContext;
let processes: ProcessRegistry;

beforeAll(async () => {
  ctx = await createTestContext();
  processes = new ProcessRegistry(serviceEnv(ctx.config, { LOG_LEVEL: 'info' }));
});
afterAll(async () => {
  await processes?.stopAll();
  await ctx?.cleanup();
});

describe('WORKER_NICE', () => {
  it('a worker with WORKER_NICE=7 runs at niceness 7 and decides bookings', async () => {
    const base = getPriority();
    const worker = await processes.startWorker({ WORKER_NICE: String(Math.max(7, base)) });
    expect(getPriority(worker.pid)).toBe(Math.max(7, base));

    const api = await ctx.startApi();
    const show = await createShow(api.app, { total_seats: 3 });
    const accepted = await call(api.app, 'POST', '/booking', { body: { show_id: show.id, customer_email: 'nice@example.com', seat_count: 2 } });
    expect(accepted.status).toBe(202);
    expect(await waitForDecision(api.app, accepted.body.id as string)).toMatchObject({ status: 'HELD' });
  });

  it('without it, a worker keeps the niceness it was started with', async () => {
    const worker = await processes.startWorker();
    expect(getPriority(worker.pid)).toBe(getPriority());
  });
});
