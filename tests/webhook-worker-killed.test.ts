import { Webhook } from 'standardwebhooks';
import { afterAll, describe, expect, it } from 'vitest';
import { openTestApi, openTestProcesses } from './support/context.js';
import { call, createShow, waitForDecision } from './support/http.js';
import { waitFor } from './support/wait.js';
import { WebhookReceiver } from './support/webhook-receiver.js';

/**
 * A worker process killed (SIGKILL) while its delivery waits on the receiver: nothing recorded
 * the attempt, so the delivery stays PENDING in the outbox and another worker sends it again,
 * with the same webhook-id, once BullMQ's stalled check gives the batch job back (or, had the
 * job itself been lost, once its lease runs out: tests/webhook-delivery.test.ts).
 */

const { ctx, api } = await openTestApi({ DB_POOL_SIZE: '2' });
const receiver = new WebhookReceiver();
afterAll(() => receiver.stop());
// Opened after the receiver: its processes stop first (after-hooks run last-registered first).
const processes = openTestProcesses(ctx, { DB_POOL_SIZE: '2', WEBHOOK_RELAY_INTERVAL_MS: '100', WEBHOOK_TIMEOUT_MS: '1000', WEBHOOK_RETRY_BASE_MS: '50' });
await receiver.start();

describe('a worker killed mid-delivery', () => {
  it('loses nothing: another worker delivers the event with the same webhook-id', async () => {
    // The first request is never answered: the worker is killed while it waits.
    receiver.answer = (_request, index) => (index === 0 ? 'hang' : 204);
    const created = await call(api.app, 'POST', '/admin/webhooks', { body: { url: receiver.url, events: ['booking.held'] }, admin: true });
    const doomed = await processes.startWorker();
    const show = await createShow(api.app, { total_seats: 1 });
    const accepted = await call(api.app, 'POST', '/booking', { body: { show_id: show.id, customer_email: 'killed@example.com', seat_count: 1 } });
    await waitForDecision(api.app, accepted.body.id);
    await waitFor(async () => (receiver.received.length === 1 ? true : undefined), 'the first attempt to reach the receiver');
    doomed.signal('SIGKILL');
    await doomed.exited;

    const { rows } = await ctx.pool.query<{ status: string; attempts: number }>('SELECT status, attempts FROM webhook_deliveries');
    expect(rows).toEqual([{ status: 'PENDING', attempts: 0 }]);

    await processes.startWorker();
    await waitFor(async () => (receiver.received.length >= 2 ? true : undefined), 'the attempt again, from the second worker', 60_000);
    const [first, second] = receiver.received;
    expect(second!.headers['webhook-id']).toBe(first!.headers['webhook-id']);
    new Webhook(created.body.secret).verify(second!.body, second!.headers as Record<string, string>);
    await waitFor(async () => {
      const delivered = await ctx.pool.query<{ status: string }>('SELECT status FROM webhook_deliveries');
      return delivered.rows[0]?.status === 'DELIVERED' ? true : undefined;
    }, 'the delivery recorded');
    // BullMQ's stalled check (about 15 s) or the lease gives the batch back: room on a loaded runner.
  }, 120_000);
});
