import { setTimeout as delay } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import type { BookingJob } from '../shared/queue/catalog.js';
import { openIntakeTest } from './support/context.js';
import { call, createShow, waitForDecision } from './support/http.js';

/**
 * ENQUEUE_LINGER_MS: the API keeps a batch job open that long after its first request, so
 * requests arriving in different event-loop turns share a job (by default each turn sends its
 * own), and a full batch still goes at once. Real Redis and BullMQ; a worker decides them.
 */

// Long enough that a full batch answered sooner cannot have waited it out, even on a loaded machine.
const LINGER_MS = 1_000;
const BATCH_SIZE = 4;

const { ctx, api, queue } = await openIntakeTest({}, { ENQUEUE_LINGER_MS: String(LINGER_MS), ENQUEUE_BATCH_SIZE: String(BATCH_SIZE) });
const showId = (await createShow(api.app, { total_seats: 50 })).id;

const book = (n: number) => call(api.app, 'POST', '/booking', { body: { show_id: showId, customer_email: `linger${n}@example.com`, seat_count: 1 } });

async function jobsHolding(ids: string[]): Promise<string[][]> {
  const jobs = await queue.getJobs(['waiting', 'active', 'delayed', 'completed', 'failed']);
  return jobs
    .map((job) => (job.data.requests as BookingJob[]).map((request) => request.id))
    .filter((requests) => requests.some((id) => ids.includes(id)));
}

describe('ENQUEUE_LINGER_MS', () => {
  it('requests a few turns apart share one job; a full batch leaves without waiting out the linger', async () => {
    // Three requests in three turns, 20 ms apart: well inside one linger.
    const spread: Array<ReturnType<typeof book>> = [];
    for (let n = 0; n < 3; n++) {
      spread.push(book(n));
      await delay(20);
    }
    const spreadReplies = await Promise.all(spread);
    expect(spreadReplies.map((reply) => reply.status)).toEqual([202, 202, 202]);
    const spreadIds = spreadReplies.map((reply) => reply.body.id as string);
    expect(await jobsHolding(spreadIds)).toEqual([spreadIds]);

    // A full batch: BATCH_SIZE requests at once are answered without the linger's wait.
    const sent = performance.now();
    const full = await Promise.all(Array.from({ length: BATCH_SIZE }, (_, n) => book(10 + n)));
    expect(performance.now() - sent).toBeLessThan(LINGER_MS);
    const fullIds = full.map((reply) => reply.body.id as string);
    expect(full.map((reply) => reply.status)).toEqual(Array(BATCH_SIZE).fill(202));
    expect(await jobsHolding(fullIds)).toEqual([fullIds]);

    await ctx.startWorker();
    for (const id of [...spreadIds, ...fullIds]) expect((await waitForDecision(api.app, id)).status).toBe('HELD');
  });
});
