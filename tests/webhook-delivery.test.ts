import { randomUUID } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { afterEach, describe, expect, it } from 'vitest';
import type { RunningWorker } from '../services/worker/worker.js';
import { QUEUES } from '../shared/queue/catalog.js';
import { openQueue } from '../shared/queue/queues.js';
import { claimDueDeliveries } from '../shared/webhooks/relay.js';
import { openTestApi } from './support/context.js';
import { call, createShow, waitForDecision } from './support/http.js';
import { sample } from './support/prometheus.js';
import { waitFor } from './support/wait.js';
import { WebhookReceiver, type Received } from './support/webhook-receiver.js';

/**
 * Webhooks end to end: the real API and worker, a real HTTP receiver on loopback. Every event
 * type arrives signed and in order per booking; 500s, timeouts and a receiver that is down are
 * retried with the same webhook-id until they succeed; retries that run out leave the delivery
 * FAILED (in the deliveries view and the metrics); a delivery whose queued attempt was lost is
 * found again in the outbox.
 */

const { ctx, api } = await openTestApi({ DB_POOL_SIZE: '2' });
let receiver: WebhookReceiver;
const workers: RunningWorker[] = [];

// Fast relay and retries; the hold long enough to confirm, short enough to watch one lapse.
const FAST = {
  WEBHOOK_RELAY_INTERVAL_MS: '100',
  WEBHOOK_RETRY_BASE_MS: '50',
  WEBHOOK_RETRY_MAX_MS: '200',
  WEBHOOK_TIMEOUT_MS: '500',
  HOLD_SECONDS: '4',
  EXPIRY_INTERVAL_SECONDS: '1',
};

afterEach(async () => {
  while (workers.length > 0) await workers.pop()!.close();
  await receiver?.stop();
  await ctx.pool.query('DELETE FROM webhooks');
});

async function startWorker(overrides: Record<string, string> = {}): Promise<RunningWorker> {
  const worker = await ctx.startWorker({ ...FAST, ...overrides });
  workers.push(worker);
  return worker;
}

async function registerWebhook(url: string, events?: string[]): Promise<{ id: string; secret: string }> {
  const reply = await call(api.app, 'POST', '/admin/webhooks', { body: { url, ...(events ? { events } : {}) }, admin: true });
  expect(reply.status).toBe(201);
  return reply.body;
}

async function book(showId: string): Promise<{ id: string; status: string }> {
  const accepted = await call(api.app, 'POST', '/booking', { body: { show_id: showId, customer_email: `hook-${randomUUID()}@example.com`, seat_count: 1 } });
  expect(accepted.status).toBe(202);
  const decided = await waitForDecision(api.app, accepted.body.id);
  return { id: accepted.body.id, status: decided.status };
}

type Delivery = { status: string; attempts: number; status_code: number | null; error: string | null; next_retry_at: string | null; type: string; booking_id: string; event_id: string };
async function deliveries(webhookId: string): Promise<Delivery[]> {
  const reply = await call(api.app, 'GET', `/admin/webhooks/${webhookId}/deliveries?limit=200`, { admin: true });
  expect(reply.status).toBe(200);
  return reply.body.deliveries;
}

const waitForReceived = (what: string, check: (received: Received[]) => boolean, timeoutMs = 45_000) =>
  waitFor(async () => (check(receiver.received) ? true : undefined), what, timeoutMs, () => JSON.stringify(receiver.received.map((r) => [r.type, r.bookingId.slice(0, 8)])));

function verify(secret: string, request: Received) {
  return new Webhook(secret).verify(request.body, request.headers as Record<string, string>) as { type: string; timestamp: string; data: Record<string, unknown> };
}

describe('webhook delivery', () => {
  it('sends every booking event, signed, in order per booking, each with its own webhook-id', async () => {
    receiver = await new WebhookReceiver().start();
    const hook = await registerWebhook(receiver.url);
    // Holds long enough that none lapses while the five are booked on a loaded machine; the one
    // meant to lapse is made to, below, by moving its expiry into the past.
    await startWorker({ HOLD_SECONDS: '300' });
    const show = await createShow(api.app, { total_seats: 4 });
    const [confirmed, declined, cancelled, lapsed] = [await book(show.id), await book(show.id), await book(show.id), await book(show.id)];
    const soldOut = await book(show.id);
    expect(soldOut.status).toBe('FAILED');
    await ctx.pool.query(`UPDATE bookings SET hold_expires_at = now() - interval '1 second' WHERE id = $1`, [lapsed!.id]);
    await ctx.pool.query(`UPDATE seats SET hold_expires_at = now() - interval '1 second' WHERE booking_id = $1`, [lapsed!.id]);
    expect((await call(api.app, 'POST', `/booking/${confirmed.id}/confirm`, { body: { payment: 'success' } })).status).toBe(200);
    expect((await call(api.app, 'POST', `/booking/${declined.id}/confirm`, { body: { payment: 'fail' } })).status).toBe(200);
    expect((await call(api.app, 'POST', `/booking/${cancelled.id}/cancel`)).status).toBe(200);

    const expected: Record<string, string[]> = {
      [confirmed.id]: ['booking.held', 'booking.confirmed'],
      [declined.id]: ['booking.held', 'booking.failed'],
      [cancelled.id]: ['booking.held', 'booking.cancelled'],
      [lapsed.id]: ['booking.held', 'booking.expired'],
      [soldOut.id]: ['booking.failed'],
    };
    await waitForReceived('every event', (received) => received.length >= 9);
    for (const [bookingId, types] of Object.entries(expected)) expect(receiver.of(bookingId).map((r) => r.type), bookingId).toEqual(types);

    const ids = new Set(receiver.received.map((request) => request.headers['webhook-id']));
    expect(ids.size).toBe(9);
    for (const request of receiver.received) {
      expect(request.headers['webhook-id']).toMatch(/^msg_[0-9a-f-]{36}$/);
      expect(request.headers['webhook-timestamp']).toMatch(/^\d{10}$/);
      const event = verify(hook.secret, request);
      expect(event.type).toBe(request.type);
      expect(event.data).toMatchObject({ id: request.bookingId, show_id: show.id });
      expect(Number.isFinite(Date.parse(event.timestamp))).toBe(true);
    }
    const byType = (bookingId: string, type: string) => verify(hook.secret, receiver.of(bookingId).find((r) => r.type === type)!).data;
    expect(byType(confirmed.id, 'booking.held')).toMatchObject({ status: 'HELD', seats: ['1'], reason: null });
    expect(byType(confirmed.id, 'booking.confirmed')).toMatchObject({ status: 'CONFIRMED', seats: ['1'] });
    expect(byType(declined.id, 'booking.failed')).toMatchObject({ status: 'FAILED', reason: 'PAYMENT_FAILED' });
    expect(byType(soldOut.id, 'booking.failed')).toMatchObject({ status: 'FAILED', reason: 'SOLD_OUT', seats: [] });
    expect(byType(lapsed.id, 'booking.expired')).toMatchObject({ status: 'EXPIRED' });

    await waitFor(async () => ((await deliveries(hook.id)).every((d) => d.status === 'DELIVERED') ? true : undefined), 'every delivery recorded');
    const recorded = await deliveries(hook.id);
    expect(recorded).toHaveLength(9);
    expect(recorded.every((d) => d.attempts === 1 && d.status_code === 204 && d.error === null && d.next_retry_at === null)).toBe(true);
  });

  it('sends only the subscribed types', async () => {
    receiver = await new WebhookReceiver().start();
    await registerWebhook(receiver.url, ['booking.confirmed']);
    await startWorker();
    const show = await createShow(api.app, { total_seats: 2 });
    const [kept, dropped] = [await book(show.id), await book(show.id)];
    await call(api.app, 'POST', `/booking/${dropped.id}/cancel`);
    await call(api.app, 'POST', `/booking/${kept.id}/confirm`, { body: { payment: 'success' } });
    await waitForReceived('the confirmation', (received) => received.length >= 1);
    expect(receiver.received.map((r) => [r.type, r.bookingId])).toEqual([['booking.confirmed', kept.id]]);
    const { rows } = await ctx.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM webhook_events WHERE booking_id = $1`, [dropped.id]);
    expect(rows[0]!.n).toBe(0);
  });

  it('sends booking.cancelled for a request that leaves the line before it is decided', async () => {
    receiver = await new WebhookReceiver().start();
    const hook = await registerWebhook(receiver.url, ['booking.cancelled']);
    await startWorker();
    const show = await createShow(api.app, { total_seats: 2 });
    expect((await call(api.app, 'POST', `/admin/shows/${show.id}/pause`, { admin: true })).status).toBe(200);
    const queued = await call(api.app, 'POST', '/booking', { body: { show_id: show.id, customer_email: 'leaver@example.com', seat_count: 1 } });
    expect(queued.body.status).toBe('QUEUED');
    expect((await call(api.app, 'POST', `/booking/${queued.body.id}/cancel`)).body).toMatchObject({ status: 'CANCELLED', seats: [] });
    await waitForReceived('the cancellation', (received) => received.length === 1);
    expect(verify(hook.secret, receiver.received[0]!)).toMatchObject({ type: 'booking.cancelled', data: { id: queued.body.id, status: 'CANCELLED', seats: [] } });
  });

  it('retries 500s with the same webhook-id, and holds back the next event of the booking until the first is delivered', async () => {
    receiver = await new WebhookReceiver().start();
    let heldAnswers = 0;
    receiver.answer = (request) => (request.type === 'booking.held' && ++heldAnswers <= 2 ? 500 : 204);
    const hook = await registerWebhook(receiver.url);
    await startWorker();
    const show = await createShow(api.app, { total_seats: 1 });
    const booking = await book(show.id);
    await call(api.app, 'POST', `/booking/${booking.id}/confirm`, { body: { payment: 'success' } });
    await waitForReceived('the confirmation', (received) => received.some((r) => r.type === 'booking.confirmed'));
    expect(receiver.of(booking.id).map((r) => r.type)).toEqual(['booking.held', 'booking.held', 'booking.held', 'booking.confirmed']);
    const heldIds = new Set(receiver.of(booking.id).slice(0, 3).map((r) => r.headers['webhook-id']));
    expect(heldIds.size).toBe(1);
    for (const request of receiver.received) verify(hook.secret, request);
    await waitFor(async () => ((await deliveries(hook.id)).every((d) => d.status === 'DELIVERED') ? true : undefined), 'both recorded');
    const held = (await deliveries(hook.id)).find((d) => d.type === 'booking.held')!;
    expect(held).toMatchObject({ status: 'DELIVERED', attempts: 3, status_code: 204, error: null });
  });

  it('retries an attempt that timed out', async () => {
    receiver = await new WebhookReceiver().start();
    receiver.answer = (_request, index) => (index === 0 ? 'hang' : 204);
    const hook = await registerWebhook(receiver.url, ['booking.held']);
    await startWorker();
    const show = await createShow(api.app, { total_seats: 1 });
    await book(show.id);
    await waitForReceived('a second attempt', (received) => received.length >= 2);
    expect(receiver.received[0]!.headers['webhook-id']).toBe(receiver.received[1]!.headers['webhook-id']);
    await waitFor(async () => ((await deliveries(hook.id))[0]?.status === 'DELIVERED' ? true : undefined), 'delivered');
    expect((await deliveries(hook.id))[0]).toMatchObject({ attempts: 2, status_code: 204 });
  });

  it('keeps retrying while the receiver is down and delivers once it is back', async () => {
    receiver = await new WebhookReceiver().start();
    const port = receiver.port;
    await receiver.stop();
    const hook = await registerWebhook(`http://127.0.0.1:${port}/hooks`, ['booking.held']);
    await startWorker();
    const show = await createShow(api.app, { total_seats: 1 });
    await book(show.id);
    const pending = await waitFor(async () => {
      const [delivery] = await deliveries(hook.id);
      return delivery && delivery.attempts >= 3 ? delivery : undefined;
    }, 'several failed attempts');
    expect(pending).toMatchObject({ status: 'PENDING', status_code: null });
    expect(pending.error).toMatch(/ECONNREFUSED|connect/i);
    expect(pending.next_retry_at).not.toBeNull();
    await receiver.start(port);
    await waitForReceived('the event', (received) => received.length === 1);
    await waitFor(async () => ((await deliveries(hook.id))[0]?.status === 'DELIVERED' ? true : undefined), 'delivered');
  });

  it('marks a delivery FAILED when its retries run out, counts it, and lets the next event of the booking go', async () => {
    receiver = await new WebhookReceiver().start();
    receiver.answer = (request) => (request.type === 'booking.held' ? 500 : 204);
    const hook = await registerWebhook(receiver.url);
    const worker = await startWorker({ WEBHOOK_RETRY_WINDOW_SECONDS: '1' });
    const show = await createShow(api.app, { total_seats: 1 });
    const booking = await book(show.id);
    await call(api.app, 'POST', `/booking/${booking.id}/cancel`);
    await waitForReceived('the cancellation', (received) => received.some((r) => r.type === 'booking.cancelled'));
    const held = (await deliveries(hook.id)).find((d) => d.type === 'booking.held')!;
    expect(held).toMatchObject({ status: 'FAILED', status_code: 500, error: 'answered 500', next_retry_at: null });
    expect(held.attempts).toBeGreaterThanOrEqual(1);
    const metrics = await worker.metrics.registry.metrics();
    expect(sample(metrics, 'ticket_rush_webhook_attempts_total', { outcome: 'FAILED' })).toBe(1);
  });

  it('finds a delivery again when its queued attempt was lost', async () => {
    receiver = await new WebhookReceiver().start();
    const hook = await registerWebhook(receiver.url, ['booking.held']);
    const show = await createShow(api.app, { total_seats: 1 });
    const accepted = await call(api.app, 'POST', '/booking', { body: { show_id: show.id, customer_email: 'lost@example.com', seat_count: 1 } });
    // No relay tick may run while the first worker decides: one that ran after the decision (a
    // worker's first tick comes at once, and a loaded machine decides first) would deliver the
    // event, and the lease below would never be found. Maintenance is paused, not raced.
    const maintenance = openQueue(QUEUES.maintenance, ctx.redis, ctx.config.QUEUE_PREFIX);
    await maintenance.pause();
    try {
      const worker = await startWorker();
      await waitForDecision(api.app, accepted.body.id);
      // A tick's lease taken and its job never queued: what a Redis that restarted without the job leaves.
      await waitFor(async () => ((await claimDueDeliveries(ctx.db, 10, 1_500)).length === 1 ? true : undefined), 'the lease');
      await worker.close();
      expect(receiver.received).toEqual([]);
    } finally {
      await maintenance.resume();
      await maintenance.close();
    }
    await startWorker();
    await waitForReceived('the event, once the lease ran out', (received) => received.length === 1);
    expect(receiver.received[0]!.bookingId).toBe(accepted.body.id);
    await waitFor(async () => ((await deliveries(hook.id))[0]?.status === 'DELIVERED' ? true : undefined), 'delivered');
  });
});
