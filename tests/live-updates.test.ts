import { describe, expect, it } from 'vitest';
import type { RunningWorker } from '../services/worker/worker.js';
import { openListeningTestApi } from './support/context.js';
import { call, createShow } from './support/http.js';
import { SseStream } from './support/sse.js';
import { waitFor } from './support/wait.js';

/**
 * Live updates in one process: the booking stream (format, first event, order, close after
 * final, Last-Event-ID), the show stream, and Prefer: wait on the status poll. The worker runs
 * only when a test wants decisions, so a request can be held QUEUED on purpose.
 */

const { ctx, api, baseUrl: base } = await openListeningTestApi({ HOLD_SECONDS: '120' });
let worker: RunningWorker | undefined;

async function startWorker(): Promise<void> {
  worker ??= await ctx.startWorker();
}
async function stopWorker(): Promise<void> {
  await worker?.close();
  worker = undefined;
}

async function book(showId: string, body: Record<string, unknown> = { seat_count: 1 }): Promise<string> {
  const accepted = await call(api.app, 'POST', '/booking', { body: { show_id: showId, customer_email: `buyer-${Math.random()}@example.com`, ...body } });
  expect(accepted.status).toBe(202);
  return accepted.body.id as string;
}

/** The body of GET /booking/:id/status, as text: what every status event's data must equal. */
async function statusText(id: string): Promise<string> {
  return (await fetch(`${base}/booking/${id}/status`)).text();
}

describe('GET /booking/:id/events', () => {
  it('sends the current state at once, every change in order with ids, the final state, then closes', async () => {
    await stopWorker();
    const show = await createShow(api.app, { total_seats: 5 });
    const id = await book(show.id);
    const stream = await SseStream.open(`${base}/booking/${id}/events`);
    expect(stream.status).toBe(200);
    expect(stream.response.headers.get('content-type')).toBe('text/event-stream');
    expect(stream.response.headers.get('cache-control')).toBe('no-cache');

    const queued = await stream.next((event) => event.event === 'status');
    expect(JSON.parse(queued.data!)).toMatchObject({ id, status: 'QUEUED', position: 1 });
    expect(queued.data).toBe(await statusText(id));

    await startWorker();
    const held = await stream.next((event) => event.event === 'status' && event.data!.includes('"HELD"'));
    expect(held.data).toBe(await statusText(id));

    const confirmed = await call(api.app, 'POST', `/booking/${id}/confirm`, { body: { payment: 'success' } });
    expect(confirmed.status).toBe(200);
    const final = await stream.next((event) => event.event === 'status' && event.data!.includes('"CONFIRMED"'));
    await stream.ended;
    expect(final.data).toBe(await statusText(id));

    // The wire format: a retry hint first, then events each with an id; nothing after the final one.
    expect(stream.raw).toMatch(/^retry: \d+\n\n/);
    expect(stream.events[0]!.retry).toBeGreaterThanOrEqual(1_000);
    const statusEvents = stream.events.filter((event) => event.event === 'status');
    // A QUEUED request may be sent again when its place changes (a worker taking its batch
    // moves it to position 0), so repeats of a status are allowed; the order of statuses is not.
    const statuses = statusEvents.map((event) => JSON.parse(event.data!).status as string);
    expect(statuses.filter((status, i) => status !== statuses[i - 1])).toEqual(['QUEUED', 'HELD', 'CONFIRMED']);
    for (const event of statusEvents) expect(event.id).toMatch(/^[0-2]\.\d+\.[\w-]{12}$/);
    expect(new Set(statusEvents.map((event) => event.id)).size).toBe(statusEvents.length);
    expect(stream.events.at(-1)).toBe(final);
  });

  it('resumes after Last-Event-ID without repeating it, and answers 204 once the final state was seen', async () => {
    await startWorker();
    const show = await createShow(api.app, { total_seats: 5 });
    const id = await book(show.id);
    const first = await SseStream.open(`${base}/booking/${id}/events`);
    const held = await first.next((event) => event.data?.includes('"HELD"') ?? false);
    first.close();

    // Reconnect naming the HELD event: nothing is repeated, the next event is the change.
    const resumed = await SseStream.open(`${base}/booking/${id}/events`, { 'last-event-id': held.id! });
    expect(resumed.status).toBe(200);
    await resumed.next((event) => event.retry !== undefined);
    expect((await call(api.app, 'POST', `/booking/${id}/cancel`)).status).toBe(200);
    const cancelled = await resumed.next((event) => event.event === 'status');
    expect(JSON.parse(cancelled.data!)).toMatchObject({ status: 'CANCELLED' });
    await resumed.ended;
    expect(resumed.statuses().map((status) => status.status)).toEqual(['CANCELLED']);

    // Final and seen: 204, so an EventSource stops reconnecting.
    const seen = await fetch(`${base}/booking/${id}/events`, { headers: { accept: 'text/event-stream', 'last-event-id': cancelled.id! } });
    expect(seen.status).toBe(204);
    expect(await seen.text()).toBe('');

    // Final, and the client saw only an earlier state: the final state, then the end.
    const late = await SseStream.open(`${base}/booking/${id}/events`, { 'last-event-id': held.id! });
    await late.ended;
    expect(late.statuses().map((status) => status.status)).toEqual(['CANCELLED']);
    expect(late.events.find((event) => event.event === 'status')!.id).toBe(cancelled.id);

    // An id this API did not make counts as nothing seen.
    const stranger = await SseStream.open(`${base}/booking/${id}/events`, { 'last-event-id': 'not-one-of-ours' });
    await stranger.ended;
    expect(stranger.statuses().map((status) => status.status)).toEqual(['CANCELLED']);
  });

  it('answers 404 JSON for an unknown id and 400 for a malformed one', async () => {
    const unknown = await call(api.app, 'GET', '/booking/00000000-0000-4000-8000-000000000000/events', { headers: { accept: 'text/event-stream' } });
    expect(unknown.status).toBe(404);
    expect(unknown.body).toMatchObject({ error: { code: 'NOT_FOUND' } });
    const malformed = await call(api.app, 'GET', '/booking/not-a-uuid/events', { headers: { accept: 'text/event-stream' } });
    expect(malformed.status).toBe(400);
    expect(malformed.body.error.details[0]).toMatchObject({ field: 'id' });
  });

  it('follows a decision to its expiry through the sweep', async () => {
    await stopWorker();
    // The hold's length is the worker's setting: a worker with 1 s holds and a fast sweep.
    const fast = await ctx.startWorker({ HOLD_SECONDS: '1', EXPIRY_INTERVAL_SECONDS: '1' });
    try {
      const show = await createShow(api.app, { total_seats: 3 });
      const id = await book(show.id);
      const stream = await SseStream.open(`${base}/booking/${id}/events`);
      await stream.next((event) => event.data?.includes('"EXPIRED"') ?? false);
      await stream.ended;
      const statuses = stream.statuses().map((status) => status.status);
      expect(statuses.at(-1)).toBe('EXPIRED');
      expect(statuses).toContain('HELD');
    } finally {
      await fast.close();
    }
  });
});

describe('GET /shows/:id/events', () => {
  it('sends availability on connect, then coalesced availability and the changed seats', async () => {
    await startWorker();
    const show = await createShow(api.app, { sections: [{ name: 'Stalls', rows: 1, seats_per_row: 4, price_cents: 100 }] });
    const stream = await SseStream.open(`${base}/shows/${show.id}/events`);
    expect(stream.status).toBe(200);
    const first = await stream.next((event) => event.event === 'availability');
    expect(JSON.parse(first.data!)).toEqual({
      show_id: show.id,
      available_seats: 4,
      sections: [{ name: 'Stalls', available_seats: 4, held_seats: 0, booked_seats: 0 }],
      sales_state: 'ON_SALE',
      in_line: 0,
    });
    expect(first.id).toBeTruthy();

    const id = await book(show.id, { seats: ['Stalls-A-2', 'Stalls-A-3'] });
    const seats = await stream.next((event) => event.event === 'seats');
    expect(JSON.parse(seats.data!)).toEqual({
      show_id: show.id,
      seats: [
        { label: 'Stalls-A-2', status: 'HELD' },
        { label: 'Stalls-A-3', status: 'HELD' },
      ],
      reload: false,
    });
    const after = await stream.next((event) => event.event === 'availability', stream.events.indexOf(first) + 1);
    expect(JSON.parse(after.data!)).toMatchObject({ available_seats: 2, sections: [{ held_seats: 2 }] });

    const from = stream.events.length;
    await call(api.app, 'POST', `/booking/${id}/confirm`, { body: { payment: 'success' } });
    const booked = await stream.next((event) => event.event === 'seats', from);
    expect(JSON.parse(booked.data!).seats).toEqual([
      { label: 'Stalls-A-2', status: 'BOOKED' },
      { label: 'Stalls-A-3', status: 'BOOKED' },
    ]);
    stream.close();
  });

  it('answers 404 for an unknown show and 400 for a malformed id', async () => {
    expect((await call(api.app, 'GET', '/shows/00000000-0000-4000-8000-000000000000/events')).status).toBe(404);
    expect((await call(api.app, 'GET', '/shows/nope/events')).status).toBe(400);
  });
});

describe('GET /booking/:id/status with Prefer: wait', () => {
  it('waits while QUEUED and answers with the decision once it is made', async () => {
    await stopWorker();
    const show = await createShow(api.app, { total_seats: 2 });
    const id = await book(show.id);
    const answer = fetch(`${base}/booking/${id}/status`, { headers: { prefer: 'wait=25' } });
    // The poll is waiting (it holds a slot) before the worker exists.
    await waitFor(async () => ((await metric('ticket_rush_live_streams_open{kind="wait"}')) === 1 ? true : undefined), 'the poll to wait');
    await startWorker();
    const response = await answer;
    expect(response.status).toBe(200);
    expect(response.headers.get('preference-applied')).toBe('wait=25');
    expect(await response.json()).toMatchObject({ id, status: 'HELD' });
  });

  it('answers QUEUED after the wait when nothing was decided, with Retry-After', async () => {
    await stopWorker();
    const show = await createShow(api.app, { total_seats: 2 });
    const id = await book(show.id);
    const response = await fetch(`${base}/booking/${id}/status`, { headers: { prefer: 'wait=1' } });
    expect(response.status).toBe(200);
    expect(response.headers.get('preference-applied')).toBe('wait=1');
    expect(response.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(await response.json()).toMatchObject({ id, status: 'QUEUED', position: expect.any(Number) });
  });

  it('answers a decided booking at once; clamps a wait over 30; refuses a malformed one', async () => {
    await startWorker();
    const show = await createShow(api.app, { total_seats: 2 });
    const id = await book(show.id);
    await waitFor(async () => ((await call(api.app, 'GET', `/booking/${id}/status`)).body.status === 'HELD' ? true : undefined), 'HELD');
    const decided = await call(api.app, 'GET', `/booking/${id}/status`, { headers: { prefer: 'respond-async, wait=600' } });
    expect(decided.status).toBe(200);
    expect(decided.headers['preference-applied']).toBe('wait=30');
    expect(decided.body).toMatchObject({ status: 'HELD' });

    const malformed = await call(api.app, 'GET', `/booking/${id}/status`, { headers: { prefer: 'wait=soon' } });
    expect(malformed.status).toBe(400);
    expect(malformed.body.error.details).toEqual([{ field: 'Prefer', problem: expect.stringContaining('whole number') }]);

    const without = await call(api.app, 'GET', `/booking/${id}/status`);
    expect(without.headers['preference-applied']).toBeUndefined();
  });
});

describe('metrics', () => {
  it('counts open streams and events sent', async () => {
    const show = await createShow(api.app, { total_seats: 1 });
    const stream = await SseStream.open(`${base}/shows/${show.id}/events`);
    await stream.next((event) => event.event === 'availability');
    await waitFor(async () => ((await metric('ticket_rush_live_streams_open{kind="show"}')) === 1 ? true : undefined), 'one show stream open');
    expect(await metric('ticket_rush_live_events_sent_total{event="availability"}')).toBeGreaterThanOrEqual(1);
    stream.close();
    await waitFor(async () => ((await metric('ticket_rush_live_streams_open{kind="show"}')) === 0 ? true : undefined), 'the stream closed');
  });
});

async function metric(series: string): Promise<number | undefined> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const line = text.split('\n').find((row) => row.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : undefined;
}
