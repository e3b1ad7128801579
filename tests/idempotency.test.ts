import { describe, expect, it } from 'vitest';
import { type BookingJob } from '../shared/queue/catalog.js';
import { openIntakeTest } from './support/context.js';
import { call, createShow, waitForDecision, type Reply } from './support/http.js';
import { waitUntil } from './support/processes.js';

/**
 * Idempotency-Key on POST /booking: a repeat with the same body gets the same response and id
 * and never a second job or booking; a different body is 422; racing repeats agree on one id;
 * keys live at least 24 hours. Requests are made with no worker running, so every job the API
 * created is still in the wait list to be counted; then a worker decides them and Postgres is
 * counted too.
 */

const DAY_SECONDS = 24 * 3_600;

const { ctx, api, queue, index } = await openIntakeTest();
const showId = (await createShow(api.app, { total_seats: 50 })).id;
const idsMade = new Set<string>();
const keysUsed = new Set<string>();

const body = (more: Record<string, unknown> = {}) => ({ show_id: showId, customer_email: 'ada@example.com', seat_count: 1, ...more });

async function book(key: string | undefined, payload: unknown): Promise<Reply> {
  if (key) keysUsed.add(key);
  const reply = await call(api.app, 'POST', '/booking', { body: payload, headers: key ? { 'idempotency-key': key } : {} });
  if (reply.status === 202) idsMade.add(reply.body.id);
  return reply;
}

/** Every booking request the queue holds, in batch jobs of any state, by id (a request enqueued twice counts twice). */
async function allJobIds(): Promise<string[]> {
  const jobs = await queue.getJobs(['waiting', 'active', 'delayed', 'prioritized', 'completed', 'failed']);
  return jobs.flatMap((job) => (job.data.requests as BookingJob[]).map((request) => request.id)).sort();
}

/** The request as it sits in its batch job. */
async function queuedRequest(id: string): Promise<BookingJob | undefined> {
  const jobId = await index.jobIdOf(id);
  const job = jobId ? await queue.getJob(jobId) : undefined;
  return (job?.data.requests as BookingJob[] | undefined)?.find((request) => request.id === id);
}

describe('while queued (no worker)', () => {
  it('the same key and body give the same response and id, and one job', async () => {
    const first = await book('order-1', body());
    const again = await book('order-1', body());
    expect(first.status).toBe(202);
    expect(again.status).toBe(202);
    expect(again.body).toEqual(first.body);
    expect(again.headers.location).toBe(first.headers.location);
    expect(again.headers['retry-after']).toBe(first.headers['retry-after']);
    expect(await allJobIds()).toEqual([first.body.id]);
    expect(await queuedRequest(first.body.id)).toMatchObject({ id: first.body.id, idempotency_key: 'order-1', customer_email: 'ada@example.com' });
  });

  it('the same key with a different body is 422 and enqueues nothing', async () => {
    const [original] = await allJobIds();
    for (const different of [
      body({ seat_count: 2 }),
      body({ section: 'GA' }),
      { show_id: showId, customer_email: 'ada@example.com', seats: ['1'] },
    ]) {
      const reply = await book('order-1', different);
      expect(reply.status, JSON.stringify(different)).toBe(422);
      expect(reply.body).toEqual({
        error: {
          code: 'IDEMPOTENCY_KEY_REUSED',
          message: expect.stringMatching(/Idempotency-Key/),
          details: [{ field: 'Idempotency-Key', problem: expect.any(String) }],
        },
      });
    }
    expect(await allJobIds()).toEqual([original]);
  });

  it('twenty concurrent requests with one key agree on one id and make one job', async () => {
    const replies = await Promise.all(Array.from({ length: 20 }, () => book('order-2', body({ seat_count: 2 }))));
    expect(replies.map((reply) => reply.status)).toEqual(Array(20).fill(202));
    const ids = new Set(replies.map((reply) => reply.body.id));
    expect(ids.size).toBe(1);
    const [id] = ids;
    expect(await allJobIds()).toContain(id);
    expect(await allJobIds()).toHaveLength(2);
  });

  it('racing requests with one key and two bodies: one wins, the other body gets 422', async () => {
    const replies = await Promise.all(
      Array.from({ length: 20 }, (_, i) => book('order-3', body({ seat_count: i % 2 === 0 ? 1 : 3 }))),
    );
    const accepted = replies.filter((reply) => reply.status === 202);
    const refused = replies.filter((reply) => reply.status === 422);
    expect(accepted.length + refused.length).toBe(20);
    expect(new Set(accepted.map((reply) => reply.body.id)).size).toBe(1);
    // Every accepted reply carried the winning body, every refused one the other.
    const winner = (await queuedRequest(accepted[0]!.body.id))!.seat_count;
    expect(accepted).toHaveLength(10);
    expect(refused).toHaveLength(10);
    replies.forEach((reply, i) => expect(reply.status).toBe((i % 2 === 0 ? 1 : 3) === winner ? 202 : 422));
    expect(await allJobIds()).toHaveLength(3);
  });

  it('another key, or no key, makes a new booking', async () => {
    const other = await book('order-4', body());
    const plain1 = await book(undefined, body());
    const plain2 = await book(undefined, body());
    expect(new Set([other.body.id, plain1.body.id, plain2.body.id]).size).toBe(3);
    expect(await allJobIds()).toHaveLength(6);
    expect(idsMade.size).toBe(6);
  });

  it('keys are kept at least 24 hours', async () => {
    const keys: string[] = [];
    let cursor = '0';
    do {
      const [next, found] = await ctx.redis.scan(cursor, 'MATCH', `${ctx.config.QUEUE_PREFIX}:idem:*`, 'COUNT', 1_000);
      cursor = next;
      keys.push(...found);
    } while (cursor !== '0');
    expect(keys).toHaveLength(keysUsed.size);
    for (const key of keys) {
      const ttl = await ctx.redis.ttl(key);
      expect(ttl, key).toBeGreaterThanOrEqual(DAY_SECONDS);
      expect(ttl, key).toBeLessThanOrEqual(2 * DAY_SECONDS);
    }
  });
});

describe('once a worker decides them', () => {
  it('Postgres holds exactly one booking per id, with its key', async () => {
    await ctx.startWorker();
    for (const id of idsMade) expect((await waitForDecision(api.app, id)).status).toBe('HELD');
    const rows = await ctx.pool.query<{ id: string; idempotency_key: string | null }>('SELECT id, idempotency_key FROM bookings ORDER BY id');
    expect(rows.rows.map((row) => row.id)).toEqual([...idsMade].sort());
    expect(rows.rows.map((row) => row.idempotency_key).filter(Boolean).sort()).toEqual(['order-1', 'order-2', 'order-3', 'order-4']);
    // A decision is visible to polls a moment before BullMQ marks its job completed.
    const counts = await waitUntil(
      'every job to complete',
      async () => {
        const now = await queue.getJobCounts('waiting', 'active', 'delayed', 'completed', 'failed');
        return (now.waiting ?? 0) + (now.active ?? 0) + (now.delayed ?? 0) === 0 && now;
      },
      10_000,
    );
    expect(counts).toMatchObject({ waiting: 0, active: 0, delayed: 0, failed: 0 });
    expect(await allJobIds()).toEqual([...idsMade].sort());
  });

  it('a replay after the decision returns the same id and makes nothing new', async () => {
    const original = await call(api.app, 'GET', '/booking/' + [...idsMade][0]);
    const replay = await book('order-1', body());
    expect(replay.status).toBe(202);
    expect(replay.body).toMatchObject({ id: original.body.id, status_url: `/booking/${original.body.id}/status` });
    expect(replay.headers.location).toBe(`/booking/${original.body.id}/status`);
    expect(await allJobIds()).toHaveLength(6);
    const mismatch = await book('order-1', body({ seat_count: 2 }));
    expect(mismatch.status).toBe(422);
    const rows = await ctx.pool.query('SELECT count(*)::int AS n FROM bookings');
    expect(rows.rows[0].n).toBe(6);
    const status = await call(api.app, 'GET', `/booking/${original.body.id}/status`);
    expect(status.body).toMatchObject({ status: 'HELD', seats: original.body.seats });
  });
});

describe('a key whose enqueue was lost', () => {
  it('is enqueued again on replay under the same id, and decided once', async () => {
    // Paused: the worker takes nothing, so the job can be removed the way a Redis failure
    // between storing the key and adding the job would have left things.
    await queue.pause();
    const first = await book('lost-enqueue', body({ customer_email: 'lost@example.com' }));
    expect(first.status).toBe(202);
    await (await queue.getJob((await index.jobIdOf(first.body.id))!))!.remove();
    expect(await allJobIds()).not.toContain(first.body.id);
    // Its entry in the request index names a job that is gone: not decided, and not unknown.
    expect((await call(api.app, 'GET', `/booking/${first.body.id}/status`)).body).toMatchObject({ status: 'FAILED', reason: 'REQUEST_REMOVED' });

    const replay = await book('lost-enqueue', body({ customer_email: 'lost@example.com' }));
    expect(replay.status).toBe(202);
    expect(replay.body.id).toBe(first.body.id);
    expect(await allJobIds()).toContain(first.body.id);

    await queue.resume();
    expect(await waitForDecision(api.app, first.body.id)).toMatchObject({ status: 'HELD' });
    const rows = await ctx.pool.query('SELECT count(*)::int AS n FROM bookings WHERE id = $1', [first.body.id]);
    expect(rows.rows[0].n).toBe(1);
  });
});

describe('keys are the customer\'s own', () => {
  it('the same key for two customers: each gets its own 202 and booking', async () => {
    // Someone else used the key first; the real customer's request is still accepted.
    const squatter = await book('order-squatted', body({ customer_email: 'mallory@example.com' }));
    const customer = await book('order-squatted', body({ customer_email: 'Carol@Example.com' }));
    expect(squatter.status).toBe(202);
    expect(customer.status).toBe(202);
    expect(customer.body.id).not.toBe(squatter.body.id);
    // Each replay still finds its own customer's request (email compared lower-cased).
    expect((await book('order-squatted', body({ customer_email: 'carol@example.com' }))).body.id).toBe(customer.body.id);
    expect((await book('order-squatted', body({ customer_email: 'mallory@example.com' }))).body.id).toBe(squatter.body.id);

    expect(await waitForDecision(api.app, squatter.body.id)).toMatchObject({ status: 'HELD' });
    expect(await waitForDecision(api.app, customer.body.id)).toMatchObject({ status: 'HELD' });
    const rows = await ctx.pool.query<{ customer_email: string }>(
      "SELECT customer_email FROM bookings WHERE idempotency_key = 'order-squatted' ORDER BY customer_email",
    );
    expect(rows.rows.map((row) => row.customer_email)).toEqual(['carol@example.com', 'mallory@example.com']);
  });
});
