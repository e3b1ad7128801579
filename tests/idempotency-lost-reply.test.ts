import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningApi } from '../services/api/server.js';
import { QUEUES, type BookingJob } from '../shared/queue/catalog.js';
import { RequestIndex } from '../shared/queue/request-index.js';
import { ownRequests } from './support/batches.js';
import { createTestContext, type TestContext } from './support/context.js';
import { call, createShow, waitForDecision } from './support/http.js';
import { TcpProxy } from './support/tcp-proxy.js';
import { waitFor } from './support/wait.js';

/**
 * An ambiguous enqueue: Redis runs the job's add, and the connection drops before its answer
 * reaches the API (a TCP proxy in front of the real Redis cuts right after Redis answered). The
 * API cannot tell whether the job exists and answers 503; the client's retry with the same
 * Idempotency-Key must get the same booking id, and exactly one booking results.
 */

let ctx: TestContext;
let proxy: TcpProxy;
let api: RunningApi;
let queue: Queue;
let index: RequestIndex;
let showId: string;

beforeAll(async () => {
  ctx = await createTestContext();
  const redis = new URL(ctx.config.REDIS_URL);
  proxy = await TcpProxy.start({ host: redis.hostname, port: Number(redis.port || 6379) });
  api = await ctx.startApi({ REDIS_URL: proxy.route(ctx.config.REDIS_URL) });
  queue = new Queue(QUEUES.bookings, { connection: ctx.redis, prefix: ctx.config.QUEUE_PREFIX });
  index = new RequestIndex(ctx.redis, queue);
  showId = (await createShow(api.app, { total_seats: 20 })).id;
});
afterAll(async () => {
  proxy?.restore();
  await queue?.close();
  await ctx?.cleanup();
  await proxy?.close();
});

const book = (key: string, email: string) =>
  call(api.app, 'POST', '/booking', { body: { show_id: showId, customer_email: email, seat_count: 1 }, headers: { 'idempotency-key': key } });

/** The requests Redis holds for `email`, in batch jobs not yet taken. */
async function waitingRequests(email: string): Promise<BookingJob[]> {
  const jobs = await queue.getJobs(['waiting']);
  const own = await Promise.all(jobs.map((job) => ownRequests(ctx.redis, index, job)));
  return own.flat().filter((request) => request.customer_email === email);
}

async function bookingIds(email: string): Promise<string[]> {
  const rows = await ctx.pool.query<{ id: string }>('SELECT id FROM bookings WHERE customer_email = $1', [email]);
  return rows.rows.map((row) => row.id);
}

describe('an add whose answer was lost', () => {
  it('to a dropped connection: 503, and the retry with the key gets the same id', async () => {
    // A first booking loads BullMQ's scripts, so the trapped add runs instead of answering NOSCRIPT.
    expect((await book('warm-up', 'warm-up@example.com')).status).toBe(202);

    // The customer's email travels only inside the job's data: the trap springs on the add.
    const email = 'cut@example.com';
    const lost = proxy.loseAnswerTo(email, 'cut');
    const first = await book('lost-to-a-cut', email);
    await lost;
    expect(first.status).toBe(503);
    expect(Number(first.headers['retry-after'])).toBeGreaterThan(0);
    const added = await waitingRequests(email);
    expect(added).toHaveLength(1); // Redis did add it

    proxy.restore();
    // 503s until the API's connection is back; then the retry is answered.
    const retry = await waitFor(async () => {
      const reply = await book('lost-to-a-cut', email);
      return reply.status === 503 ? undefined : reply;
    }, 'the API to answer the retry');
    expect(retry.status).toBe(202);
    expect(retry.body.id).toBe(added[0]!.id);
  });

  it('to an error on a live connection: the claim is kept, the retry gets the same id', async () => {
    const email = 'error@example.com';
    const lost = proxy.loseAnswerTo(email, 'error');
    const first = await book('lost-to-an-error', email);
    await lost;
    expect(first.status).not.toBe(202);
    const added = await waitingRequests(email);
    expect(added).toHaveLength(1);

    // The connection never dropped: had the key been released, this would be a second booking.
    const retry = await book('lost-to-an-error', email);
    expect(retry.status).toBe(202);
    expect(retry.body.id).toBe(added[0]!.id);
  });

  it('one booking per key once a worker decides them', async () => {
    await ctx.startWorker();
    for (const email of ['cut@example.com', 'error@example.com']) {
      const ids = await waitFor(async () => {
        const found = await bookingIds(email);
        return found.length > 0 ? found : undefined;
      }, `the booking of ${email}`);
      expect(ids).toHaveLength(1);
      expect(await waitForDecision(api.app, ids[0]!)).toMatchObject({ status: 'HELD' });
    }
    // Both requests were decided; a second job carrying either id decided nothing new.
    await waitFor(async () => {
      const counts = await queue.getJobCounts('waiting', 'active', 'delayed');
      return (counts.waiting ?? 0) + (counts.active ?? 0) + (counts.delayed ?? 0) === 0 ? true : undefined;
    }, 'the queue to drain');
    expect(await bookingIds('cut@example.com')).toHaveLength(1);
    expect(await bookingIds('error@example.com')).toHaveLength(1);
  });
});
