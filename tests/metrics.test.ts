import { waitFor } from './support/wait.js';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { serveMetrics } from '../services/worker/metrics-server.js';
import type { RunningWorker } from '../services/worker/worker.js';
import { createLogger } from '../shared/logger.js';
import { openTestApi } from './support/context.js';
import { freePort } from './support/processes.js';
import { call, createShow, waitForDecision } from './support/http.js';
import { declaredMetrics, sample } from './support/prometheus.js';

// Short holds and sweeps so the expiry series move within the test.
const { ctx, api } = await openTestApi({ HOLD_SECONDS: '2', EXPIRY_INTERVAL_SECONDS: '1' });

async function scrapeApi(): Promise<string> {
  const reply = await api.app.inject({ method: 'GET', url: '/metrics' });
  expect(reply.statusCode).toBe(200);
  expect(reply.headers['content-type']).toMatch(/^text\/plain/);
  return reply.body;
}

async function scrapeWorker(worker: RunningWorker): Promise<string> {
  const response = await fetch(worker.metrics.url!);
  expect(response.status).toBe(200);
  return response.text();
}

/** Scrapes until `check` finds what it wants; the last scrape is in the error when it never does. */
async function eventually<T>(read: () => Promise<string>, check: (text: string) => T | undefined | false, timeoutMs = 20_000): Promise<T> {
  let last = '';
  return waitFor(
    async () => {
      last = await read();
      const result = check(last);
      return result === false ? undefined : result;
    },
    'the metrics to show it',
    timeoutMs,
    () => `last scrape:\n${last}`,
  );
}

describe('metrics', () => {
  it('API and worker series exist and move as bookings flow through the pipeline', async () => {
    const show = await createShow(api.app, { total_seats: 3 });

    // No worker yet: the requests wait, and the API's scrape says so.
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const reply = await call(api.app, 'POST', '/booking', { body: { show_id: show.id, customer_email: `fan${i}@example.com`, seat_count: 1 } });
      expect(reply.status).toBe(202);
      ids.push(reply.body.id);
    }
    const waiting = await eventually(scrapeApi, (text) => {
      const age = sample(text, 'ticket_rush_queue_oldest_waiting_age_seconds', { queue: 'bookings' });
      return age !== undefined && age > 0 && text;
    });
    // One request per job here: they were sent one after another, so none shared a batch.
    expect(sample(waiting, 'ticket_rush_queue_jobs', { queue: 'bookings', state: 'waiting' })).toBe(5);
    expect(sample(waiting, 'ticket_rush_booking_requests_waiting')).toBe(5);
    expect(sample(waiting, 'ticket_rush_queue_jobs', { queue: 'bookings', state: 'active' })).toBe(0);
    expect(sample(waiting, 'ticket_rush_queue_jobs', { queue: 'bookings', state: 'failed' })).toBe(0);
    expect(sample(waiting, 'ticket_rush_queue_jobs', { queue: 'maintenance', state: 'delayed' })).toBeDefined();
    expect(sample(waiting, 'ticket_rush_http_requests_total', { method: 'POST', route: '/booking', status_code: '202' })).toBe(5);
    expect(sample(waiting, 'ticket_rush_http_request_duration_seconds_count', { method: 'POST', route: '/booking', status_code: '202' })).toBe(5);
    expect(sample(waiting, 'ticket_rush_redis_up')).toBe(1);
    expect(sample(waiting, 'ticket_rush_pg_pool_waiting_clients')).toBe(0);
    expect(sample(waiting, 'ticket_rush_pg_pool_connections', { state: 'idle' })).toBeGreaterThanOrEqual(0);
    expect(sample(waiting, 'nodejs_eventloop_lag_seconds')).toBeDefined();
    expect(sample(waiting, 'ticket_rush_bookings_total', { status: 'HELD' })).toBeUndefined();

    // A worker decides them: 3 seats for 5 fans.
    const worker = await ctx.startWorker({ WORKER_METRICS_PORT: String(await freePort()) });
    expect(worker.metrics.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    const decisions = await Promise.all(ids.map((id) => waitForDecision(api.app, id)));
    expect(decisions.filter((d) => d.status === 'HELD' || d.status === 'EXPIRED')).toHaveLength(3);
    expect(decisions.filter((d) => d.status === 'FAILED' && d.reason === 'SOLD_OUT')).toHaveLength(2);

    // The API's one scrape target shows the pipeline: outcomes from the shared counters,
    // an empty queue, and the polls under their route pattern (never the raw URL).
    const after = await eventually(scrapeApi, (text) => sample(text, 'ticket_rush_bookings_total', { status: 'FAILED', reason: 'SOLD_OUT' }) === 2 && text);
    expect(sample(after, 'ticket_rush_bookings_total', { status: 'HELD', reason: 'none' })).toBe(3);
    expect(sample(after, 'ticket_rush_queue_jobs', { queue: 'bookings', state: 'waiting' })).toBe(0);
    expect(sample(after, 'ticket_rush_booking_requests_waiting')).toBe(0);
    expect(sample(after, 'ticket_rush_queue_oldest_waiting_age_seconds', { queue: 'bookings' })).toBe(0);
    expect(sample(after, 'ticket_rush_http_requests_total', { method: 'GET', route: '/booking/:id/status', status_code: '200' })).toBeGreaterThanOrEqual(5);
    expect(after).not.toContain(ids[0]);

    // The worker's own endpoint: what it decided and how long things took.
    // A job's duration is recorded when BullMQ completes it, just after its outcome was counted.
    const workerText = await eventually(
      () => scrapeWorker(worker),
      (text) => sample(text, 'ticket_rush_job_duration_seconds_count', { queue: 'bookings', job: 'process-bookings', result: 'completed' }) === 5 && text,
    );
    expect([...declaredMetrics(workerText)]).toEqual(
      expect.arrayContaining([
        'ticket_rush_job_duration_seconds',
        'ticket_rush_booking_decision_latency_seconds',
        'ticket_rush_worker_bookings_total',
        'ticket_rush_seat_claim_lock_wait_seconds',
        'ticket_rush_seat_claim_transaction_seconds',
        'ticket_rush_booking_batch_size',
        'ticket_rush_expiry_sweep_released_holds',
        'ticket_rush_expiry_released_seats_total',
        'ticket_rush_pg_pool_connections',
        'ticket_rush_pg_pool_waiting_clients',
        'ticket_rush_redis_up',
      ]),
    );
    expect(sample(workerText, 'ticket_rush_worker_bookings_total', { status: 'HELD', reason: 'none' })).toBe(3);
    expect(sample(workerText, 'ticket_rush_worker_bookings_total', { status: 'FAILED', reason: 'SOLD_OUT' })).toBe(2);
    expect(sample(workerText, 'ticket_rush_booking_decision_latency_seconds_count', { status: 'HELD' })).toBe(3);
    expect(sample(workerText, 'ticket_rush_booking_decision_latency_seconds_count', { status: 'FAILED' })).toBe(2);
    // They waited for a worker, so the accept-to-decision time is real, not zero.
    expect(sample(workerText, 'ticket_rush_booking_decision_latency_seconds_sum', { status: 'HELD' })).toBeGreaterThan(0);
    expect(sample(workerText, 'ticket_rush_job_duration_seconds_count', { queue: 'bookings', job: 'process-bookings', result: 'completed' })).toBe(5);
    expect(sample(workerText, 'ticket_rush_booking_batch_size_sum')).toBeGreaterThanOrEqual(5);
    const batches = sample(workerText, 'ticket_rush_booking_batch_size_count')!;
    expect(batches).toBeGreaterThanOrEqual(1);
    expect(sample(workerText, 'ticket_rush_seat_claim_transaction_seconds_count', { outcome: 'committed' })).toBe(batches);
    expect(sample(workerText, 'ticket_rush_seat_claim_lock_wait_seconds_count')).toBe(batches);
    expect(sample(workerText, 'ticket_rush_redis_up')).toBe(1);
    expect(sample(workerText, 'ticket_rush_pg_pool_connections', { state: 'idle' })).toBeGreaterThanOrEqual(1);

    // The holds lapse and the scheduled sweep releases their seats.
    const swept = await eventually(
      () => scrapeWorker(worker),
      (text) => (sample(text, 'ticket_rush_expiry_released_seats_total') ?? 0) >= 3 && text,
    );
    expect(sample(swept, 'ticket_rush_expiry_sweep_released_holds_sum')).toBe(3);
    expect(sample(swept, 'ticket_rush_job_duration_seconds_count', { queue: 'maintenance', job: 'expire-holds', result: 'completed' })).toBeGreaterThanOrEqual(1);
  });

  it('keeps /metrics out of rate limiting and behind METRICS_TOKEN when one is set', async () => {
    const token = 'metrics-token-0123456789';
    const guarded = await ctx.startApi({ METRICS_TOKEN: token, RATE_LIMIT_PER_MINUTE: '2' });
    const scrape = (headers: Record<string, string> = {}) => guarded.app.inject({ method: 'GET', url: '/metrics', headers });
    const refused = await scrape();
    expect(refused.statusCode).toBe(401);
    expect(refused.json()).toMatchObject({ error: { code: 'UNAUTHORIZED' } });
    expect((await scrape({ authorization: 'Bearer wrong-token-0123456789' })).statusCode).toBe(401);
    for (let i = 0; i < 5; i++) expect((await scrape({ authorization: `Bearer ${token}` })).statusCode).toBe(200);
    // The limit itself is live: an ordinary route runs out after 2.
    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await guarded.app.inject({ method: 'GET', url: '/shows' })).statusCode);
    expect(statuses).toEqual([200, 200, 429]);
  });

  it("serves a worker's metrics with the same token rule, and steps aside when its port is taken", async () => {
    const registry = new Registry();
    const logged: string[] = [];
    const logger = createLogger({ LOG_LEVEL: 'warn' }, 'test', { write: (line: string) => void logged.push(line) });
    const token = 'metrics-token-0123456789';
    const server = (await serveMetrics(registry, { port: 0, host: '127.0.0.1', token, logger }))!;
    try {
      expect((await fetch(server.url)).status).toBe(401);
      const ok = await fetch(server.url, { headers: { authorization: `Bearer ${token}` } });
      expect(ok.status).toBe(200);
      expect(ok.headers.get('content-type')).toMatch(/^text\/plain/);
      expect((await fetch(server.url.replace('/metrics', '/other'))).status).toBe(404);
      expect((await fetch(server.url, { method: 'POST', headers: { authorization: `Bearer ${token}` } })).status).toBe(405);

      const port = Number(new URL(server.url).port);
      const second = await serveMetrics(registry, { port, host: '127.0.0.1', token: undefined, logger });
      expect(second).toBeNull();
      expect(logged.join('')).toMatch(/metrics port already in use/);
    } finally {
      await server.close();
    }
  });
});
