import { randomUUID } from 'node:crypto';
import { Queue, UnrecoverableError, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { RequestIndex } from '../shared/queue/request-index.js';
import { openTestContext } from './support/context.js';
import { waitFor } from './support/wait.js';

/**
 * The request index (shared/queue/request-index.ts) reads BullMQ's job hash and lists from
 * its Lua scripts: fields BullMQ does not document as an API. bullmq is pinned to an exact
 * version; this file is the alarm for an upgrade that changes them. It runs real jobs through
 * a real Worker and checks every field and key the index reads, with the formats it parses.
 * The index's own keys stay out of BullMQ's namespace, and a poll costs one or two round trips.
 */

const ctx = await openTestContext();
const queue = new Queue('job-hash', { connection: ctx.redis, prefix: ctx.config.QUEUE_PREFIX });
const workers: Worker[] = [];
afterAll(async () => {
  for (const worker of workers) await worker.close();
  await queue.close();
});

const MILLIS = /^\d{13}$/;
const batch = { requests: [{ id: 'a', accepted_at: new Date().toISOString() }, { id: 'b', accepted_at: new Date().toISOString() }] };
const hash = (jobId: string) => ctx.redis.hgetall(queue.toKey(jobId));

function startWorker(): void {
  const worker = new Worker(
    'job-hash',
    async (job) => {
      if (job.name === 'fails') throw new UnrecoverableError('no such show');
      return { decided: 2, held: 2, failed: 0 };
    },
    { connection: ctx.redis.duplicate({ maxRetriesPerRequest: null }), prefix: ctx.config.QUEUE_PREFIX },
  );
  workers.push(worker);
}

describe('the BullMQ job hash the request index reads', () => {
  it('keeps its shape: unstarted lists, then timestamp, data, processedOn, finishedOn, returnvalue, failedReason', async () => {
    const options = { removeOnComplete: false, removeOnFail: false };
    const waiting = await queue.add('completes', batch, { ...options, jobId: 'waiting-1' });
    await queue.add('delayed', batch, { ...options, jobId: 'delayed-1', delay: 3_600_000 });
    await queue.add('prioritized', batch, { ...options, jobId: 'prioritized-1', priority: 5 });

    // Reconcile reads the unstarted jobs from these keys, with LRANGE and ZRANGE.
    expect(await ctx.redis.type(queue.toKey('wait'))).toBe('list');
    expect(await ctx.redis.lrange(queue.toKey('wait'), 0, -1)).toEqual(['waiting-1']);
    expect(await ctx.redis.type(queue.toKey('delayed'))).toBe('zset');
    expect(await ctx.redis.zrange(queue.toKey('delayed'), '0', '-1')).toEqual(['delayed-1']);
    expect(await ctx.redis.type(queue.toKey('prioritized'))).toBe('zset');
    expect(await ctx.redis.zrange(queue.toKey('prioritized'), '0', '-1')).toEqual(['prioritized-1']);
    // A paused queue keeps its jobs in wait (since BullMQ 5); `paused` is a legacy list, still read.
    await queue.pause();
    expect(await ctx.redis.lrange(queue.toKey('wait'), 0, -1)).toEqual(['waiting-1']);
    expect(['none', 'list']).toContain(await ctx.redis.type(queue.toKey('paused')));
    await queue.resume();
    await queue.remove('prioritized-1');
    await queue.remove('delayed-1');

    // Unstarted: accepted at `timestamp` (ms), data as JSON, nothing a worker writes yet.
    const unstarted = await hash(waiting.id!);
    expect(unstarted.timestamp).toMatch(MILLIS);
    expect(Number(unstarted.timestamp)).toBe(waiting.timestamp);
    expect(JSON.parse(unstarted.data!)).toEqual(batch);
    expect(unstarted).not.toHaveProperty('processedOn');
    expect(unstarted).not.toHaveProperty('finishedOn');
    expect(unstarted).not.toHaveProperty('failedReason');
    expect(unstarted).not.toHaveProperty('returnvalue');
    // Reconcile counts a batch's requests by this exact spelling in the data.
    expect(unstarted.data!.match(/"accepted_at":/g)).toHaveLength(2);

    const failing = await queue.add('fails', batch, { ...options, jobId: 'failing-1', attempts: 3 });
    startWorker();
    const completed = await waitFor(async () => {
      const fields = await hash(waiting.id!);
      return fields.finishedOn ? fields : undefined;
    }, 'the job to complete');
    expect(completed.processedOn).toMatch(MILLIS);
    expect(completed.finishedOn).toMatch(MILLIS);
    expect(Number(completed.finishedOn)).toBeGreaterThanOrEqual(Number(completed.processedOn));
    expect(JSON.parse(completed.returnvalue!)).toEqual({ decided: 2, held: 2, failed: 0 });
    expect(completed).not.toHaveProperty('failedReason');
    expect(completed.timestamp).toBe(unstarted.timestamp);
    expect(completed.data).toBe(unstarted.data);

    // Failed for good: finishedOn and failedReason set, no return value (its requests read FAILED).
    const failed = await waitFor(async () => {
      const fields = await hash(failing.id!);
      return fields.finishedOn ? fields : undefined;
    }, 'the job to fail');
    expect(failed.processedOn).toMatch(MILLIS);
    expect(failed.finishedOn).toMatch(MILLIS);
    expect(failed.failedReason).toBe('no such show');
    expect(failed).not.toHaveProperty('returnvalue');
    expect(JSON.parse(failed.data!)).toEqual(batch);

    // A removed job leaves no hash: the index reads that as "gone".
    await queue.remove(waiting.id!);
    expect(await ctx.redis.exists(queue.toKey(waiting.id!))).toBe(0);
  });
});

describe('the request index', () => {
  it('keeps its keys beside BullMQ\'s, under the same prefix, and answers a poll in one or two round trips', async () => {
    // Its own connection, counting what it sends (auto-pipelining off: one command, one trip).
    const redis = ctx.redis.duplicate({ enableAutoPipelining: false }) as Redis;
    let sent: string[] = [];
    const send = redis.sendCommand.bind(redis);
    redis.sendCommand = ((command: { name: string }, ...rest: unknown[]) => {
      sent.push(command.name);
      return (send as (...args: unknown[]) => unknown)(command, ...rest);
    }) as typeof redis.sendCommand;
    const bookings = new Queue('bookings', { connection: redis, prefix: ctx.config.QUEUE_PREFIX });
    try {
      const index = new RequestIndex(redis, bookings);
      const [queued, decided] = [randomUUID(), randomUUID()];
      const jobId = randomUUID();
      await index.register(jobId, [queued, decided]);
      await bookings.add('process-bookings', { requests: [] }, { jobId });
      await index.recordResults([[decided, { status: 'FAILED', reason: 'SOLD_OUT', seats: [], hold_expires_at: null, decided_at: new Date().toISOString() }]]);

      const prefix = ctx.config.QUEUE_PREFIX;
      expect(index.keyOf(queued)).toBe(`${prefix}:intake:req:${queued}`);
      expect(await redis.exists(`${prefix}:intake:req:${queued}`, `${prefix}:intake:req:${decided}`, `${prefix}:intake:accepted`)).toBe(3);
      expect(await redis.keys(`${prefix}:bookings:req:*`)).toEqual([]);
      expect(await redis.keys(`${prefix}:bookings:intake:*`)).toEqual([]);

      await index.lookup(queued); // the first call may load the script (NOSCRIPT, then EVAL)
      sent = [];
      expect(await index.lookup(queued)).toMatchObject({ state: 'in-job', position: 1, finishedAt: null });
      // The entry and its flow place in one MGET (the flow place names the show's keys for the script).
      expect(sent).toEqual(['mget', 'evalsha']);
      sent = [];
      expect(await index.lookup(decided)).toMatchObject({ state: 'decided' });
      expect(sent).toEqual(['mget']);
    } finally {
      await bookings.close();
      await redis.quit();
    }
  });
});
