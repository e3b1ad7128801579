import { randomUUID } from 'node:crypto';
import { sql } from 'drizzle-orm';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningApi } from '../services/api/server.js';
import { startWorker, type RunningWorker } from '../services/worker/worker.js';
import { LayoutCache } from '../shared/booking/shows.js';
import { createDb, isTransientDbError } from '../shared/db/client.js';
import { createLogger } from '../shared/logger.js';
import { createTestContext, type TestContext } from './support/context.js';
import { call, createShow, waitForDecision } from './support/http.js';
import { TcpProxy } from './support/tcp-proxy.js';
import { waitFor } from './support/wait.js';

/**
 * Postgres unreachable (the API and a worker reach it through a TCP proxy the test cuts):
 * every route that needs Postgres answers 503 with Retry-After in the project's error shape,
 * never a 500 and never a driver message; the worker retries with one warn line per failure,
 * no stacks and nothing at error level.
 */

let ctx: TestContext;
let proxy: TcpProxy;
let api: RunningApi;
let worker: RunningWorker | undefined;
const workerLines: Array<Record<string, unknown>> = [];

beforeAll(async () => {
  ctx = await createTestContext();
  const target = new URL(ctx.databaseUrl);
  proxy = await TcpProxy.start({ host: target.hostname, port: Number(target.port || 5432) });
  api = await ctx.startApi({ DATABASE_URL: proxy.route(ctx.databaseUrl) });
});
afterAll(async () => {
  proxy?.restore();
  await worker?.close();
  await ctx?.cleanup();
  await proxy?.close();
});

function expectUnavailable(reply: { status: number; body: any; headers: Record<string, unknown> }, route: string): void {
  expect({ route, status: reply.status }).toEqual({ route, status: 503 });
  expect(Number(reply.headers['retry-after'])).toBeGreaterThan(0);
  expect(reply.body).toEqual({ error: { code: 'SERVICE_UNAVAILABLE', message: expect.any(String) } });
  expect(JSON.stringify(reply.body)).not.toMatch(/ECONN|query|select|params|postgres|drizzle/i);
}

describe('Postgres outage at the edge', () => {
  it('answers 503 + Retry-After on every route that needs Postgres', async () => {
    const decider = await ctx.startWorker();
    const cached = await createShow(api.app, { total_seats: 10 });
    // The admin route does not fill the API's layout cache: nothing has read this show yet.
    const uncached = await createShow(api.app, { total_seats: 10 });
    const book = (showId: string) => call(api.app, 'POST', '/booking', { body: { show_id: showId, customer_email: 'outage@example.com', seat_count: 1 } });
    const accepted = await book(cached.id);
    expect(accepted.status).toBe(202);
    const bookingId = accepted.body.id as string;
    expect(await waitForDecision(api.app, bookingId)).toMatchObject({ status: 'HELD' });
    await decider.close();

    const routes: Array<[string, () => ReturnType<typeof call>]> = [
      ['GET /booking/:id', () => call(api.app, 'GET', `/booking/${bookingId}`)],
      // An id Redis knows nothing of: only Postgres can say whether it exists.
      ['GET /booking/:id/status', () => call(api.app, 'GET', `/booking/${randomUUID()}/status`)],
      ['POST /booking/:id/confirm', () => call(api.app, 'POST', `/booking/${bookingId}/confirm`, { body: { payment: 'success' } })],
      ['POST /booking/:id/cancel', () => call(api.app, 'POST', `/booking/${bookingId}/cancel`)],
      ['GET /shows', () => call(api.app, 'GET', '/shows')],
      ['GET /shows/:id', () => call(api.app, 'GET', `/shows/${cached.id}`)],
      ['GET /shows/:id/seats', () => call(api.app, 'GET', `/shows/${uncached.id}/seats`)],
      ['POST /booking (show not cached)', () => book(uncached.id)],
      [
        'POST /admin/shows',
        () => call(api.app, 'POST', '/admin/shows', { body: { name: 'Outage', start_time: '2030-01-01T20:00:00Z', total_seats: 5 }, admin: true }),
      ],
      // The sale schedule, the line, the waiting list, refunds and webhooks read or write Postgres too.
      ['PATCH /admin/shows/:id', () => call(api.app, 'PATCH', `/admin/shows/${uncached.id}`, { body: { name: 'Renamed' }, admin: true })],
      ['GET /shows/:id/draw', () => call(api.app, 'GET', `/shows/${uncached.id}/draw`)],
      ['POST /admin/shows/:id/pause', () => call(api.app, 'POST', `/admin/shows/${uncached.id}/pause`, { admin: true })],
      ['GET /admin/shows/:id/waitlist', () => call(api.app, 'GET', `/admin/shows/${uncached.id}/waitlist`, { admin: true })],
      ['POST /admin/shows/:id/waitlist/close', () => call(api.app, 'POST', `/admin/shows/${uncached.id}/waitlist/close`, { admin: true })],
      ['POST /admin/bookings/:id/refund', () => call(api.app, 'POST', `/admin/bookings/${bookingId}/refund`, { admin: true })],
      ['GET /admin/bookings', () => call(api.app, 'GET', '/admin/bookings', { admin: true })],
      ['POST /admin/webhooks', () => call(api.app, 'POST', '/admin/webhooks', { body: { url: 'http://127.0.0.1:9/hooks' }, admin: true })],
      ['GET /admin/webhooks', () => call(api.app, 'GET', '/admin/webhooks', { admin: true })],
    ];
    proxy.cut();
    try {
      for (const [route, send] of routes) expectUnavailable(await send(), route);
      // A show whose layout is cached still takes bookings: the queue is in Redis.
      expect((await book(cached.id)).status).toBe(202);
    } finally {
      proxy.restore();
    }
  });
});

describe('a cached show plan through an outage', () => {
  it('every request that arrives while a re-read fails gets the known plan, not only the first', async () => {
    const show = await createShow(api.app, { total_seats: 10 });
    const { db, pool } = createDb({ connectionString: proxy.route(ctx.databaseUrl), max: 2, applicationName: 'layout-cache-test' });
    try {
      // Trusted for 0 ms: every get after the first re-reads, as every plan does once PLAN_MAX_AGE_MS old.
      const layouts = new LayoutCache(db, 10, 0);
      const known = await layouts.get(show.id);
      expect(known).toMatchObject({ salesOpenAt: expect.any(Date) });
      const readAt = Date.now();
      await waitFor(async () => (Date.now() > readAt ? true : undefined), 'the clock to pass the read');
      proxy.cut();
      try {
        // Requests that arrive together (a burst) while the re-read fails: the first starts it,
        // the others wait on that same read.
        const plans = await Promise.all(Array.from({ length: 8 }, () => layouts.get(show.id)));
        expect(plans).toEqual(Array.from({ length: 8 }, () => known));
      } finally {
        proxy.restore();
      }
    } finally {
      await pool.end();
    }
  });
});

describe('a transaction on a connection the outage reset', () => {
  /** A pool through the proxy holding `idle` open connections, as the API's does between requests. */
  async function poolWithIdle(idle: number) {
    const handle = createDb({ connectionString: proxy.route(ctx.databaseUrl), max: 3, applicationName: 'dead-idle-test' });
    const clients = await Promise.all(Array.from({ length: idle }, () => handle.pool.connect()));
    for (const client of clients) client.release();
    expect(handle.pool.idleCount).toBe(idle);
    return handle;
  }
  /** pool.end() waits for every checked-out client: after a leak it would never return and hide the failure behind a timeout. */
  async function endUnlessLeaked(pool: pg.Pool): Promise<void> {
    if (pool.totalCount === pool.idleCount) await pool.end();
  }

  it('runs once Postgres is back, though the pool still holds the connections the cut reset', async () => {
    const { db, pool } = await poolWithIdle(2);
    try {
      // Back at once: the pool reads the resets only at its sockets' next poll, after it has handed one out.
      proxy.cut();
      proxy.restore();
      const [row] = await db.transaction(async (tx) => (await tx.execute(sql`select 1 as one`)).rows);
      expect(row).toEqual({ one: 1 });
    } finally {
      await endUnlessLeaked(pool);
    }
  });

  it('leaves no client checked out when it fails during the outage', async () => {
    const { db, pool } = await poolWithIdle(2);
    try {
      proxy.cut();
      try {
        await expect(db.transaction((tx) => tx.execute(sql`select 1`))).rejects.toSatisfy(isTransientDbError);
      } finally {
        proxy.restore();
      }
      expect(pool.totalCount - pool.idleCount).toBe(0);
    } finally {
      await endUnlessLeaked(pool);
    }
  });
});

describe('Postgres outage in the worker', () => {
  it('logs each transient failure as one warn line without a stack, nothing at error level', async () => {
    const config = ctx.configWith({ DATABASE_URL: proxy.route(ctx.databaseUrl), LOG_LEVEL: 'info', EXPIRY_INTERVAL_SECONDS: '1' });
    const logger = createLogger(config, 'worker', { write: (line: string) => void workerLines.push(JSON.parse(line) as Record<string, unknown>) });
    const show = await createShow(api.app, { total_seats: 10 });
    // Cached in the API before the cut, so the booking is accepted during it.
    expect((await call(api.app, 'GET', `/shows/${show.id}/seats`)).status).toBe(200);
    worker = await startWorker(config, logger);

    proxy.cut();
    const accepted = await call(api.app, 'POST', '/booking', { body: { show_id: show.id, customer_email: 'retry@example.com', seat_count: 1 } });
    expect(accepted.status).toBe(202);
    const failures = () => workerLines.filter((line) => line.msg === 'job failed; BullMQ retries it unless attempts are exhausted');
    // Both the booking batch and the scheduled sweep have failed, the batch more than once.
    await waitFor(async () => {
      const jobs = failures().map((line) => line.job);
      return jobs.filter((job) => job === 'process-bookings').length >= 2 && jobs.includes('expire-holds') ? true : undefined;
    }, 'the worker to fail and retry during the outage');
    proxy.restore();
    expect(await waitForDecision(api.app, accepted.body.id as string)).toMatchObject({ status: 'HELD' });

    expect(workerLines.filter((line) => (line.level as number) >= 50)).toEqual([]);
    for (const line of failures()) {
      expect(line.level).toBe(40);
      expect(typeof line.err).toBe('string');
      expect(JSON.stringify(line)).not.toMatch(/\n\s+at |"stack"/);
      // The driver's reason, not drizzle's "Failed query: ... params: ..." (which carries emails).
      expect(line.err).not.toMatch(/Failed query|params:/);
    }
  });
});
