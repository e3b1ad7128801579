import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type RunningApi } from '../services/api/server.js';
import { startWorker, type RunningWorker } from '../services/worker/worker.js';
import { createLogger } from '../shared/logger.js';
import { openTestContext } from './support/context.js';
import { call, createShow, waitForDecision } from './support/http.js';

/**
 * What operators read: the API and the worker log to one captured stream at info level, as
 * they would in production, and a booking is followed through both by its request id.
 */

const ctx = await openTestContext();
let api: RunningApi;
let worker: RunningWorker;
const lines: Array<Record<string, unknown>> = [];
const raw: string[] = [];

beforeAll(async () => {
  const config = ctx.configWith({ LOG_LEVEL: 'info' });
  const logger = createLogger(config, 'ticket-rush', {
    write: (line: string) => {
      raw.push(line);
      lines.push(JSON.parse(line) as Record<string, unknown>);
    },
  });
  worker = await startWorker(config, logger.child({ component: 'worker' }));
  api = await startApi(config, logger.child({ component: 'api' }), { listen: false });
});
afterAll(async () => {
  await api?.close();
  await worker?.close();
});

describe('logs', () => {
  it('follow a booking from the API into the worker by request id, and never show the email', async () => {
    const show = await createShow(api.app, { total_seats: 5 });
    const email = 'Private.Person@Example.com';
    const requestId = 'trace-booking-7f3a';
    const accepted = await call(api.app, 'POST', '/booking', {
      body: { show_id: show.id, customer_email: email, seat_count: 2 },
      headers: { 'x-request-id': requestId },
    });
    expect(accepted.status).toBe(202);
    expect(accepted.headers['x-request-id']).toBe(requestId);
    const bookingId = accepted.body.id as string;
    expect(await waitForDecision(api.app, bookingId)).toMatchObject({ status: 'HELD' });
    // A bad request echoes nothing of the body into the log either.
    await call(api.app, 'POST', '/booking', { body: { show_id: show.id, customer_email: email, seat_count: 0 } });
    await call(api.app, 'POST', `/booking/${bookingId}/confirm`, { body: { payment: 'success' } });

    const traced = lines.filter((line) => line.reqId === requestId);
    const api_ = traced.filter((line) => line.component === 'api');
    const worker_ = traced.filter((line) => line.component === 'worker');
    expect(api_.map((line) => line.msg)).toEqual(expect.arrayContaining(['booking accepted']));
    // One access line per request, at info, with the route pattern (services/api/request-hooks.ts).
    expect(api_.filter((line) => line.msg === 'request completed')).toEqual([
      expect.objectContaining({ level: 30, method: 'POST', route: '/booking', status: 202, ms: expect.any(Number) }),
    ]);
    expect(worker_.map((line) => line.msg)).toEqual(expect.arrayContaining(['booking decided']));
    // Every worker line about this booking carries the request id.
    const workerLinesForBooking = lines.filter((line) => line.component === 'worker' && line.bookingId === bookingId);
    expect(workerLinesForBooking.length).toBeGreaterThan(0);
    for (const line of workerLinesForBooking) expect(line.reqId).toBe(requestId);

    // Probes stay out of the info log.
    await call(api.app, 'GET', '/health');
    expect(lines.filter((line) => line.msg === 'request completed' && line.route === '/health')).toEqual([]);
    const polls = lines.filter((line) => line.msg === 'request completed' && line.route === '/booking/:id/status');
    expect(polls.length).toBeGreaterThan(0);
    expect(polls.every((line) => line.method === 'GET' && line.status === 200)).toBe(true);

    expect(lines.length).toBeGreaterThan(5);
    for (const line of raw) expect(line.toLowerCase()).not.toContain(email.toLowerCase());
  });
});
