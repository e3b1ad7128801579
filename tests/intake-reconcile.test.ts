import { describe, expect, it } from 'vitest';
import { openIntakeTest } from './support/context.js';
import { call, createShow } from './support/http.js';
import { waitFor } from './support/wait.js';

/**
 * The intake's line (accepted - taken, which load shedding reads) drifts when a markTaken is
 * lost with Redis or jobs are removed, and nothing brought it back: the API kept answering a
 * false QUEUE_FULL. The worker's scheduled recount sets it from the queue's real state.
 */

const MAX_QUEUE_DEPTH = 5;

const { ctx, api, index } = await openIntakeTest({ MAX_QUEUE_DEPTH: String(MAX_QUEUE_DEPTH) });
const showId = (await createShow(api.app, { total_seats: 50 })).id;

let customer = 0;
const book = () => call(api.app, 'POST', '/booking', { body: { show_id: showId, customer_email: `fan-${customer++}@example.com`, seat_count: 1 } });

/** What lost markTakens leave behind: requests counted as waiting that no job holds any more. */
const skew = (requests: number) => ctx.redis.decrby(`${ctx.config.QUEUE_PREFIX}:intake:taken`, requests);

describe('the intake line', () => {
  it('is recounted from the requests in unstarted batch jobs', async () => {
    for (let i = 0; i < 3; i++) expect((await book()).status).toBe(202);
    expect(await index.waiting()).toBe(3);
    await skew(10);
    expect(await index.waiting()).toBe(13);
    expect(await index.reconcile()).toEqual({ was: 13, now: 3 });
    expect(await index.waiting()).toBe(3);
  });

  it('a skewed line sheds bookings with QUEUE_FULL until the worker recounts it', async () => {
    await skew(10);
    const refused = await waitFor(async () => {
      const reply = await book();
      return reply.status === 503 ? reply : undefined;
    }, 'load shedding');
    expect(refused.body.error.code).toBe('QUEUE_FULL');

    // The worker decides the queued requests (moving taken on by those alone) and recounts.
    await ctx.startWorker({ INTAKE_RECONCILE_SECONDS: '1' });
    const accepted = await waitFor(async () => {
      const reply = await book();
      return reply.status === 202 ? reply : undefined;
    }, 'bookings to be accepted again');
    expect(accepted.body.status).toBe('QUEUED');
    expect(await index.waiting()).toBeLessThan(MAX_QUEUE_DEPTH);
  });
});
