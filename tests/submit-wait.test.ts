import { afterAll, describe, expect, it } from 'vitest';
import { QUEUES } from '../shared/queue/catalog.js';
import { openQueue } from '../shared/queue/queues.js';
import { openTestApi } from './support/context.js';
import { call, createShow, waitForDecision } from './support/http.js';
import { sample } from './support/prometheus.js';
import { waitFor } from './support/wait.js';

/**
 * POST /booking with `Prefer: wait=N` (RFC 7240): the answer waits for the worker's decision
 * and carries it (200, the status view), so a booking takes one request instead of a submit and
 * a poll; when N seconds pass first it is the 202 it always was. The real API and workers.
 */

const { ctx, api } = await openTestApi();
const queue = openQueue(QUEUES.bookings, ctx.redis, ctx.config.QUEUE_PREFIX);
afterAll(() => queue.close());

const book = (showId: string, email: string, headers: Record<string, string> = {}, extra: Record<string, unknown> = {}) =>
  call(api.app, 'POST', '/booking', { body: { show_id: showId, customer_email: email, seat_count: 1, ...extra }, headers });

describe('with no worker running', () => {
  it('answers 202 once the wait is over, saying it waited, with the place in line and the status URL', async () => {
    const show = await createShow(api.app, { total_seats: 5 });
    const reply = await book(show.id, 'patient@example.com', { prefer: 'wait=1' });
    expect(reply.status).toBe(202);
    expect(reply.headers['preference-applied']).toBe('wait=1');
    expect(reply.body).toMatchObject({ status: 'QUEUED', phase: 'IN_LINE', status_url: `/booking/${reply.body.id}/status` });
    expect(typeof reply.body.position).toBe('number');
    expect(reply.headers.location).toBe(reply.body.status_url);
    expect(reply.headers['retry-after']).toMatch(/^\d+$/);
  });

  it('refuses a malformed preference with a 400 naming the header, and queues nothing', async () => {
    const show = await createShow(api.app, { total_seats: 5 });
    const before = await queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized');
    const reply = await book(show.id, 'hasty@example.com', { prefer: 'wait=soon' });
    expect(reply.status).toBe(400);
    expect(reply.body.error.details).toContainEqual({ field: 'Prefer', problem: expect.stringMatching(/whole number of seconds/) });
    expect(await queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized')).toEqual(before);
  });

  it('answers at once in the waiting room, where the draw decides, without applying the preference', async () => {
    const at = (ms: number) => new Date(Date.now() + ms).toISOString();
    const show = await createShow(api.app, { total_seats: 5, waiting_room_opens_at: at(-60_000), sales_open_at: at(3_600_000), sales_close_at: at(7_200_000) });
    const reply = await book(show.id, 'early@example.com', { prefer: 'wait=30' });
    expect(reply.status).toBe(202);
    expect(reply.body).toMatchObject({ status: 'QUEUED', phase: 'WAITING_ROOM', position: null });
    expect(reply.headers['preference-applied']).toBeUndefined();
  });
});

describe('with a worker running', () => {
  it('answers 200 with the decision: the hold, its seats, the status URL and the applied preference', async () => {
    await ctx.startWorker();
    const show = await createShow(api.app, { total_seats: 2 });
    const reply = await book(show.id, 'quick@example.com', { prefer: 'wait=20' });
    expect(reply.status).toBe(200);
    expect(reply.headers['preference-applied']).toBe('wait=20');
    expect(reply.body).toMatchObject({ status: 'HELD', seats: [expect.any(String)], hold_expires_at: expect.any(String) });
    expect(reply.headers['content-location']).toBe(`/booking/${reply.body.id}/status`);
    // The same as its status URL answers now.
    const status = await call(api.app, 'GET', `/booking/${reply.body.id}/status`);
    expect(status.body).toMatchObject({ id: reply.body.id, status: 'HELD', seats: reply.body.seats });
  });

  it('decides a crowd arriving together: every answer a decision, no seat given twice, the rest SOLD_OUT', async () => {
    const show = await createShow(api.app, { total_seats: 10 });
    const replies = await Promise.all(Array.from({ length: 40 }, (_, index) => book(show.id, `crowd-${index}@example.com`, { prefer: 'wait=25' })));
    expect(replies.map((reply) => reply.status)).toEqual(replies.map(() => 200));
    const held = replies.filter((reply) => reply.body.status === 'HELD');
    expect(held).toHaveLength(10);
    expect(new Set(held.flatMap((reply) => reply.body.seats)).size).toBe(10);
    expect(replies.filter((reply) => reply.body.status === 'FAILED').map((reply) => reply.body.reason)).toEqual(Array(30).fill('SOLD_OUT'));
  });

  it('gives a replay of an Idempotency-Key the first request\'s decision, with no second booking', async () => {
    const show = await createShow(api.app, { total_seats: 3 });
    const headers = { prefer: 'wait=20', 'idempotency-key': 'submit-wait-replay-1' };
    const first = await book(show.id, 'replay@example.com', headers);
    expect(first.status).toBe(200);
    const again = await book(show.id, 'replay@example.com', headers);
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ id: first.body.id, status: 'HELD', seats: first.body.seats });
    const seats = await call(api.app, 'GET', `/shows/${show.id}`);
    expect(seats.body.available_seats).toBe(2);
  });

  it('answers 202 as before without the preference, and the poll finds the decision', async () => {
    const show = await createShow(api.app, { total_seats: 1 });
    const reply = await book(show.id, 'plain@example.com');
    expect(reply.status).toBe(202);
    expect(reply.headers['preference-applied']).toBeUndefined();
    expect(await waitForDecision(api.app, reply.body.id)).toMatchObject({ status: 'HELD' });
  });
});

describe('at the stream cap', () => {
  it('answers 202 at once, preference not applied, when no slot is free to wait in', async () => {
    const capped = await ctx.startApi({ SSE_MAX_STREAMS: '1' });
    const at = (ms: number) => new Date(Date.now() + ms).toISOString();
    // A poll waiting on a waiting-room request (undecided until its sale opens) takes the only slot.
    const room = await createShow(capped.app, { total_seats: 1, waiting_room_opens_at: at(-60_000), sales_open_at: at(3_600_000), sales_close_at: at(7_200_000) });
    const entrant = await call(capped.app, 'POST', '/booking', { body: { show_id: room.id, customer_email: 'entrant@example.com', seat_count: 1 } });
    const holder = call(capped.app, 'GET', `/booking/${entrant.body.id}/status`, { headers: { prefer: 'wait=3' } });
    await waitFor(async () => {
      const metrics = await call(capped.app, 'GET', '/metrics');
      return sample(String(metrics.body), 'ticket_rush_live_streams_open', { kind: 'wait' }) === 1 ? true : undefined;
    }, 'the poll to take the slot');

    const show = await createShow(capped.app, { total_seats: 1 });
    const reply = await call(capped.app, 'POST', '/booking', { body: { show_id: show.id, customer_email: 'capped@example.com', seat_count: 1 }, headers: { prefer: 'wait=20' } });
    expect(reply.status).toBe(202);
    expect(reply.headers['preference-applied']).toBeUndefined();
    // The holder was still waiting when the booking was answered: no slot had come free.
    expect((await holder).headers['preference-applied']).toBe('wait=3');
    expect(await waitForDecision(capped.app, reply.body.id)).toMatchObject({ status: 'HELD' });
  });
});
