import { randomUUID } from 'node:crypto';
import { Queue, QueueEvents } from 'bullmq';
import { describe, expect, it } from 'vitest';
import { JOBS, QUEUES, type BookingJob } from '../shared/queue/catalog.js';
import { openIntakeTest } from './support/context.js';
import { call, createShow, waitForDecision } from './support/http.js';

/**
 * Requests travel in batch jobs (ENQUEUE_BATCH_SIZE at most, those accepted in one event-loop
 * turn). What must hold: a 202 only once the request's job is stored, nothing in two jobs,
 * exact places in line, and a batch that fails for good fails only the requests it did not
 * decide.
 */

const BATCH_SIZE = 7;

const { ctx, api, queue, index } = await openIntakeTest({}, { ENQUEUE_BATCH_SIZE: String(BATCH_SIZE) });
const showId = (await createShow(api.app, { total_seats: 100 })).id;

async function requestsByJob(): Promise<Map<string, string[]>> {
  const jobs = await queue.getJobs(['waiting', 'active', 'delayed', 'completed', 'failed']);
  return new Map(jobs.map((job) => [job.id!, (job.data.requests as BookingJob[]).map((request) => request.id)]));
}

describe('batch jobs', () => {
  it('a burst shares jobs of at most ENQUEUE_BATCH_SIZE; every request is in exactly one, with its exact place in line', async () => {
    const replies = await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        call(api.app, 'POST', '/booking', { body: { show_id: showId, customer_email: `fan${i}@example.com`, seat_count: 1 } }),
      ),
    );
    expect(replies.map((reply) => reply.status)).toEqual(Array(30).fill(202));
    const ids = replies.map((reply) => reply.body.id as string);

    const byJob = await requestsByJob();
    expect(byJob.size).toBeGreaterThanOrEqual(Math.ceil(30 / BATCH_SIZE));
    expect(byJob.size).toBeLessThan(30); // concurrent requests did share jobs
    for (const requests of byJob.values()) expect(requests.length).toBeLessThanOrEqual(BATCH_SIZE);
    expect([...byJob.values()].flat().sort()).toEqual([...ids].sort());
    // The index points each request at the job that carries it.
    for (const [jobId, requests] of byJob) for (const id of requests) expect(await index.jobIdOf(id)).toBe(jobId);

    // No worker yet: places are 1..30, each once, and the status poll agrees with the 202.
    expect(replies.map((reply) => reply.body.position as number).sort((a, b) => a - b)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
    for (const reply of replies) {
      const status = await call(api.app, 'GET', `/booking/${reply.body.id}/status`);
      expect(status.body).toMatchObject({ status: 'QUEUED', position: reply.body.position });
    }
    expect(await index.waiting()).toBe(30);

    // A worker decides them all; the line is empty and every decision is read back from Redis.
    await ctx.startWorker();
    for (const id of ids) expect((await waitForDecision(api.app, id)).status).toBe('HELD');
    expect(await index.waiting()).toBe(0);
    const entries = await Promise.all(ids.map((id) => index.lookup(id)));
    expect(entries.every((entry) => entry.state === 'decided')).toBe(true);
  });

  it('a batch run again after its hold was settled does not overwrite what polls read', async () => {
    const events = new QueueEvents(QUEUES.bookings, { connection: ctx.redis.duplicate(), prefix: ctx.config.QUEUE_PREFIX });
    await events.waitUntilReady();
    try {
      const accepted = await call(api.app, 'POST', '/booking', { body: { show_id: showId, customer_email: 'rerun@example.com', seat_count: 1 } });
      const held = await waitForDecision(api.app, accepted.body.id);
      expect(held).toMatchObject({ status: 'HELD', seats: [expect.any(String)] });
      const failedPayment = await call(api.app, 'POST', `/booking/${accepted.body.id}/confirm`, { body: { payment: 'fail' } });
      expect(failedPayment.body).toMatchObject({ status: 'FAILED', reason: 'PAYMENT_FAILED' });
      const expected = (await call(api.app, 'GET', `/booking/${accepted.body.id}/status`)).body;
      expect(expected).toMatchObject({ status: 'FAILED', reason: 'PAYMENT_FAILED', seats: held.seats });

      // The batch runs again (an operator's retry, or a redelivery after a stall): the request
      // is found decided, and the poll still answers from Postgres with the settled booking.
      const completed = await queue.getJobs(['completed']);
      const job = completed.find((candidate) => (candidate.data.requests as BookingJob[]).some((request) => request.id === accepted.body.id))!;
      await job.retry('completed');
      await (await queue.getJob(job.id!))!.waitUntilFinished(events, 20_000);
      expect((await call(api.app, 'GET', `/booking/${accepted.body.id}/status`)).body).toEqual(expected);
    } finally {
      await events.close();
    }
  });

  it('polls of a hold read the recorded decision while it has time left; a confirm or cancel sends them to Postgres', async () => {
    const book = async (email: string) => {
      const accepted = await call(api.app, 'POST', '/booking', { body: { show_id: showId, customer_email: email, seat_count: 1 } });
      const held = await waitForDecision(api.app, accepted.body.id);
      expect(held).toMatchObject({ status: 'HELD' });
      return { id: accepted.body.id as string, held };
    };
    const poll = async (id: string) => (await call(api.app, 'GET', `/booking/${id}/status`)).body;
    const recordedKey = (id: string) => index.keyOf(id);

    // Served from Redis: Postgres changed behind the API's back does not show.
    const first = await book('recorded@example.com');
    expect(await index.lookup(first.id)).toMatchObject({ state: 'decided' });
    await ctx.pool.query(`UPDATE bookings SET hold_expires_at = hold_expires_at + interval '1 second' WHERE id = $1`, [first.id]);
    const fromRedis = await poll(first.id);
    expect(fromRedis).toEqual(first.held);
    // The same record with under RECORDED_HOLD_MARGIN_MS left: Postgres answers.
    const record = JSON.parse((await ctx.redis.get(recordedKey(first.id)))!);
    await ctx.redis.set(recordedKey(first.id), JSON.stringify({ ...record, hold_expires_at: new Date(Date.now() + 2_000).toISOString() }), 'EX', 60);
    const fromPostgres = await poll(first.id);
    expect(fromPostgres.hold_expires_at).not.toBe(first.held.hold_expires_at);
    expect(Date.parse(fromPostgres.hold_expires_at) - Date.parse(first.held.hold_expires_at)).toBe(1_000);

    // Confirm and cancel mark the record settled first: the next poll shows what they did.
    const confirmed = await book('confirmed@example.com');
    expect((await call(api.app, 'POST', `/booking/${confirmed.id}/confirm`, { body: { payment: 'success' } })).status).toBe(200);
    expect(await poll(confirmed.id)).toMatchObject({ status: 'CONFIRMED', seats: confirmed.held.seats });
    const cancelled = await book('cancelled@example.com');
    expect((await call(api.app, 'POST', `/booking/${cancelled.id}/cancel`)).status).toBe(200);
    expect(await poll(cancelled.id)).toMatchObject({ status: 'CANCELLED' });
    expect(await ctx.redis.get(recordedKey(cancelled.id))).toBe('settled');
  });

  it('a recorded decision that does not parse (a FAILED without its reason, broken JSON) is ignored: Postgres answers', async () => {
    const accepted = await call(api.app, 'POST', '/booking', { body: { show_id: showId, customer_email: 'garbled@example.com', seat_count: 1 } });
    expect(await waitForDecision(api.app, accepted.body.id)).toMatchObject({ status: 'HELD' });
    expect((await call(api.app, 'POST', `/booking/${accepted.body.id}/confirm`, { body: { payment: 'fail' } })).status).toBe(200);
    const decidedAt = new Date().toISOString();
    for (const garbled of [
      JSON.stringify({ status: 'FAILED', reason: null, seats: [], hold_expires_at: null, decided_at: decidedAt }),
      JSON.stringify({ status: 'FAILED', reason: 'UNKNOWN', seats: [], hold_expires_at: null, decided_at: decidedAt }),
      '{"status": "FAILED", ',
    ]) {
      await ctx.redis.set(index.keyOf(accepted.body.id), garbled, 'EX', 60);
      const poll = await call(api.app, 'GET', `/booking/${accepted.body.id}/status`);
      expect(poll.status).toBe(200);
      expect(poll.body).toMatchObject({ id: accepted.body.id, status: 'FAILED', reason: 'PAYMENT_FAILED' });
    }
  });

  it('a decision recorded after a settle started does not hide it', async () => {
    // A client can settle a hold it read from Postgres before the worker recorded it: the
    // queued entry keeps its job and place, marked, and the late record leaves it alone.
    const id = randomUUID();
    const jobId = randomUUID();
    await index.register(jobId, [id]);
    await index.markSettled(id);
    const marked = await ctx.redis.get(index.keyOf(id));
    expect(marked).toMatch(new RegExp(`^${jobId}:\\d+:settled$`));
    expect(await index.jobIdOf(id)).toBe(jobId);
    await index.recordResults([[id, { status: 'HELD', reason: null, seats: ['1'], hold_expires_at: new Date(Date.now() + 60_000).toISOString(), decided_at: new Date().toISOString() }]]);
    expect(await ctx.redis.get(index.keyOf(id))).toBe(marked);
    expect(await index.lookup(id)).toEqual({ state: 'unknown' }); // its job is gone here: Postgres answers
    // Nor is a result written where the entry is gone.
    const gone = randomUUID();
    await index.recordResults([[gone, { status: 'FAILED', reason: 'SOLD_OUT', seats: [], hold_expires_at: null, decided_at: new Date().toISOString() }]]);
    expect(await ctx.redis.exists(index.keyOf(gone))).toBe(0);
  });

  it('a payload the catalog rejects fails without retrying, on either queue, before any handler runs', async () => {
    const maintenance = new Queue(QUEUES.maintenance, { connection: ctx.redis, prefix: ctx.config.QUEUE_PREFIX });
    const events = {
      bookings: new QueueEvents(QUEUES.bookings, { connection: ctx.redis.duplicate(), prefix: ctx.config.QUEUE_PREFIX }),
      maintenance: new QueueEvents(QUEUES.maintenance, { connection: ctx.redis.duplicate(), prefix: ctx.config.QUEUE_PREFIX }),
    };
    try {
      await Promise.all([events.bookings.waitUntilReady(), events.maintenance.waitUntilReady()]);
      const batch = await queue.add('process-bookings', { requests: [{ id: 'not-a-uuid' }] }, { ...JOBS['process-bookings'].options });
      await expect(batch.waitUntilFinished(events.bookings, 20_000)).rejects.toThrow(/invalid "process-bookings" payload/);
      expect((await queue.getJob(batch.id!))!.attemptsMade).toBe(1);
      const sweep = await maintenance.add('expire-holds', 'not an object' as never, { attempts: 3 });
      await expect(sweep.waitUntilFinished(events.maintenance, 20_000)).rejects.toThrow(/invalid "expire-holds" payload/);
      expect((await maintenance.getJob(sweep.id!))!.attemptsMade).toBe(1);
    } finally {
      await Promise.all([events.bookings.close(), events.maintenance.close(), maintenance.close()]);
    }
  });

  it('a batch that fails for good: its decided requests keep their decision, the rest read FAILED PROCESSING_ERROR', async () => {
    const events = new QueueEvents(QUEUES.bookings, { connection: ctx.redis.duplicate(), prefix: ctx.config.QUEUE_PREFIX });
    await events.waitUntilReady();
    try {
      const request = (show: string): BookingJob => ({
        id: randomUUID(),
        show_id: show,
        customer_email: 'batch@example.com',
        seat_count: 1,
        section: null,
        seats: null,
        accepted_at: new Date().toISOString(),
        idempotency_key: null,
        request_id: 'test',
      });
      // The API never accepts a request for a show that does not exist: a worker cannot decide
      // it, and the job fails without retrying. Its neighbour in the batch is decided all the same.
      const good = request(showId);
      const doomed = request(randomUUID());
      const jobId = randomUUID();
      await index.register(jobId, [good.id, doomed.id]);
      const job = await queue.add('process-bookings', { requests: [good, doomed] }, { ...JOBS['process-bookings'].options, jobId });
      await expect(job.waitUntilFinished(events, 20_000)).rejects.toThrow(/does not exist/);

      expect((await call(api.app, 'GET', `/booking/${good.id}/status`)).body).toMatchObject({ status: 'HELD', seats: [expect.any(String)] });
      const failed = await call(api.app, 'GET', `/booking/${doomed.id}/status`);
      expect(failed.status).toBe(200);
      expect(failed.body).toMatchObject({ id: doomed.id, status: 'FAILED', reason: 'PROCESSING_ERROR', seats: [] });
      const whole = await call(api.app, 'GET', `/booking/${doomed.id}`);
      expect(whole.body).toMatchObject({ id: doomed.id, status: 'FAILED', reason: 'PROCESSING_ERROR', customer_email: 'b***@example.com' });
      expect((await queue.getJob(jobId))!.attemptsMade).toBe(1);
    } finally {
      await events.close();
    }
  });
});
