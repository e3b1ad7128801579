import { expect, it } from 'vitest';
import type { RunningApi } from '../services/api/server.js';
import { openTestContext } from './support/context.js';
import { call, createShow } from './support/http.js';
import { SseStream } from './support/sse.js';
import { waitFor } from './support/wait.js';

/**
 * The per-process stream cap (SSE_MAX_STREAMS, waiting polls included) and the graceful
 * shutdown that ends every stream. No worker runs: bookings stay QUEUED.
 */

const ctx = await openTestContext();

async function listening(overrides: Record<string, string> = {}): Promise<{ api: RunningApi; base: string }> {
  const api = await ctx.startApi(overrides);
  return { api, base: await api.app.listen({ port: 0, host: '127.0.0.1' }) };
}

async function queuedBooking(api: RunningApi, showId: string): Promise<string> {
  const accepted = await call(api.app, 'POST', '/booking', { body: { show_id: showId, customer_email: `b-${Math.random()}@example.com`, seat_count: 1 } });
  expect(accepted.status).toBe(202);
  return accepted.body.id as string;
}

it('refuses streams beyond SSE_MAX_STREAMS with 503 + Retry-After, and a waiting poll at the cap answers at once', async () => {
  const { api, base } = await listening({ SSE_MAX_STREAMS: '2' });
  const show = await createShow(api.app, { total_seats: 3 });
  const id = await queuedBooking(api, show.id);
  const first = await SseStream.open(`${base}/shows/${show.id}/events`);
  const second = await SseStream.open(`${base}/booking/${id}/events`);
  await first.next((event) => event.event === 'availability');
  await second.next((event) => event.event === 'status');

  const third = await fetch(`${base}/shows/${show.id}/events`, { headers: { accept: 'text/event-stream' } });
  expect(third.status).toBe(503);
  expect(third.headers.get('retry-after')).toMatch(/^[1-5]$/);
  expect(await third.json()).toMatchObject({ error: { code: 'TOO_MANY_STREAMS' } });

  // A poll that would wait needs a slot too: at the cap it is answered now, its preference unapplied.
  const poll = await fetch(`${base}/booking/${id}/status`, { headers: { prefer: 'wait=30' } });
  expect(poll.status).toBe(200);
  expect(poll.headers.get('preference-applied')).toBeNull();
  expect(await poll.json()).toMatchObject({ status: 'QUEUED' });

  // A slot given back is usable again.
  first.close();
  const again = await waitFor(async () => {
    const stream = await SseStream.open(`${base}/shows/${show.id}/events`);
    if (stream.status === 200) return stream;
    await stream.ended;
    return undefined;
  }, 'a slot to free up');
  await again.next((event) => event.event === 'availability');
  again.close();
  second.close();
  await api.close();
});

it('ends every stream and answers every waiting poll when the API shuts down', async () => {
  const { api, base } = await listening();
  const show = await createShow(api.app, { total_seats: 3 });
  const id = await queuedBooking(api, show.id);
  const bookingStream = await SseStream.open(`${base}/booking/${id}/events`);
  const showStream = await SseStream.open(`${base}/shows/${show.id}/events`);
  await bookingStream.next((event) => event.event === 'status');
  await showStream.next((event) => event.event === 'availability');
  const poll = fetch(`${base}/booking/${id}/status`, { headers: { prefer: 'wait=30' } });
  await waitFor(async () => {
    const metrics = await (await fetch(`${base}/metrics`)).text();
    return metrics.includes('ticket_rush_live_streams_open{kind="wait"} 1') ? true : undefined;
  }, 'the poll to wait');
  // The close finishes (the server waits for no stream), and ends every stream on the way.
  const closed = api.close();
  await bookingStream.ended;
  await showStream.ended;
  const answered = await poll;
  await closed;
  expect(answered.status).toBe(200);
  expect(answered.headers.get('preference-applied')).toBe('wait=30');
  expect(await answered.json()).toMatchObject({ id, status: 'QUEUED' });
  // Only QUEUED events (more than one if its estimated wait changed meanwhile).
  expect(new Set(bookingStream.statuses().map((status) => status.status))).toEqual(new Set(['QUEUED']));
});
