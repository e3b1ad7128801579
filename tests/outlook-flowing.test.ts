import { randomUUID } from 'node:crypto';
import { Worker, type Job } from 'bullmq';
import { afterAll, describe, expect, it } from 'vitest';
import { AvailableSeats } from '../shared/booking/available-seats.js';
import { environmentSettings } from '../shared/booking/sale-schedule.js';
import { LayoutCache } from '../shared/booking/shows.js';
import { ChangePublisher } from '../shared/live/changes.js';
import { createLogger } from '../shared/logger.js';
import { QUEUES, type BookingBatch, type BookingJob } from '../shared/queue/catalog.js';
import { openQueue } from '../shared/queue/queues.js';
import { RequestIndex } from '../shared/queue/request-index.js';
import { createBookingProcessor } from '../services/worker/jobs/process-bookings.js';
import { openTestApi } from './support/context.js';
import { call, createShow, waitForDecision } from './support/http.js';
import { waitFor } from './support/wait.js';

/**
 * Telling buyers where they stand (issue 13) in the flowing queue: a request of a show on sale
 * waits in a batch job of the queue every show shares, and its polls carry `seats_ahead` (the
 * seats of its own show's requests ahead of it), `outlook` and, once its show's decision rate is
 * measured, `estimated_wait_seconds`, all from Redis (the show's flowing-queue counters).
 *
 * No worker process runs here: the test decides the queue one batch at a time with the worker's
 * own batch handler (createBookingProcessor), taking each job from BullMQ as a worker would, so
 * it can look at the line between two decisions. Real Postgres and Redis.
 */

const { ctx, api } = await openTestApi({ HOLD_SECONDS: '300' });
const queue = openQueue(QUEUES.bookings, ctx.redis, ctx.config.QUEUE_PREFIX);
const index = new RequestIndex(ctx.redis, queue);
const availableSeats = new AvailableSeats(ctx.redis, ctx.db, index.line);
const changes = new ChangePublisher(ctx.redis, ctx.config.QUEUE_PREFIX, () => {}, (showIds) => availableSeats.refresh(showIds));
const { processBookings } = createBookingProcessor({
  db: ctx.db,
  layouts: new LayoutCache(ctx.db),
  settings: environmentSettings(ctx.config),
  batchSize: ctx.config.WORKER_BATCH_SIZE,
  logger: createLogger(ctx.config, 'test'),
  index,
  changes,
});
// Takes jobs only when asked (no processor): the test's hand-driven worker.
const taker = new Worker<BookingBatch>(QUEUES.bookings, null, { connection: ctx.redis.duplicate(), prefix: ctx.config.QUEUE_PREFIX });
afterAll(async () => {
  await taker.close();
  await queue.close();
});

/** Takes the next batch job as a worker would and decides it with the worker's handler; resolves once its seats are recounted. */
async function decideNextBatch(): Promise<BookingBatch> {
  const token = randomUUID();
  const job = (await taker.getNextJob(token, { block: false })) as Job<BookingBatch> | undefined;
  if (!job) throw new Error('no batch job waiting');
  await job.moveToCompleted(await processBookings(job.data, job), token, false);
  await availableSeats.settled();
  return job.data;
}

let buyer = 0;
async function book(showId: string, body: Record<string, unknown>): Promise<string> {
  const accepted = await call(api.app, 'POST', '/booking', { body: { show_id: showId, customer_email: `flowing${buyer++}@example.com`, ...body } });
  expect(accepted.status, JSON.stringify(accepted.body)).toBe(202);
  return accepted.body.id as string;
}
const poll = async (id: string) => (await call(api.app, 'GET', `/booking/${id}/status`)).body;
/** The show's seats are counted at creation, in the background: its first polls wait for the count. */
const counted = async (id: string) => waitFor(async () => ((await poll(id)).outlook ? true : undefined), 'the show to be counted', 10_000);

describe('seats_ahead, outlook and estimated wait in the flowing queue', () => {
  it("estimated_wait_seconds follows the show's own decision rate, once one is measured", async () => {
    const show = await createShow(api.app, { total_seats: 200 });
    const line: string[] = [];
    for (let at = 0; at < 60; at++) line.push(await book(show.id, { seat_count: 1 }));
    const back = line.at(-1)!;
    // First in the file: nothing has drained the queue yet, so neither the show's rate nor the
    // queue's (the fallback, for a show whose own requests do not move) is known: no estimate.
    expect(await poll(back)).not.toHaveProperty('estimated_wait_seconds');
    // Decide its batches one by one until the API has measured the show's rate (it samples
    // about once a second in the background).
    const estimated = await waitFor(
      async () => {
        await decideNextBatch();
        const status = await poll(back);
        return status.estimated_wait_seconds !== undefined ? status : undefined;
      },
      "the show's decision rate to be measured",
      20_000,
    );
    expect(estimated).toMatchObject({ status: 'QUEUED', phase: 'IN_LINE' });
    expect(estimated.estimated_wait_seconds).toBeGreaterThanOrEqual(1);
    // The rest is not needed: removed from the queue, and the queue's place counter recounted
    // from it (as the scheduled reconcile-intake does), so the next test starts afresh.
    await queue.drain();
    await index.reconcile();
  });

  it("counts only its own show's seats ahead; GOOD at the front, UNLIKELY where the seats run out; moves as batches are decided", async () => {
    const small = await createShow(api.app, { total_seats: 3 });
    const other = await createShow(api.app, { total_seats: 10 });
    // Interleaved in one queue: each POST is its own batch job, in this order.
    const a1 = await book(small.id, { seat_count: 1 });
    const b1 = await book(other.id, { seat_count: 2 });
    const a2 = await book(small.id, { seat_count: 2 });
    const b2 = await book(other.id, { seat_count: 1 });
    const a3 = await book(small.id, { seat_count: 1 });
    await counted(a1);
    await counted(b1);

    expect(await poll(a1)).toMatchObject({ status: 'QUEUED', phase: 'IN_LINE', position: 1, seats_ahead: 0, outlook: 'GOOD' });
    expect(await poll(b1)).toMatchObject({ position: 2, seats_ahead: 0, outlook: 'GOOD' });
    expect(await poll(a2)).toMatchObject({ position: 3, seats_ahead: 1, outlook: 'GOOD' });
    expect(await poll(b2)).toMatchObject({ position: 4, seats_ahead: 2, outlook: 'GOOD' });
    // Three seats ahead and its own do not fit in the show's three.
    expect(await poll(a3)).toMatchObject({ position: 5, seats_ahead: 3, outlook: 'UNLIKELY' });
    // The full view carries the same fields; none of it is paused.
    const full = (await call(api.app, 'GET', `/booking/${a3}`)).body;
    expect(full).toMatchObject({ status: 'QUEUED', position: 5, seats_ahead: 3, outlook: 'UNLIKELY' });
    expect(full).not.toHaveProperty('paused');

    // The front batch is decided: its seat is no longer ahead of anyone, and it is held now.
    expect((await decideNextBatch()).requests.map((request) => request.id)).toEqual([a1]);
    expect(await poll(a2)).toMatchObject({ position: 2, seats_ahead: 0, outlook: 'GOOD' });
    expect(await poll(a3)).toMatchObject({ position: 4, seats_ahead: 2, outlook: 'UNLIKELY' });
    // The other show's line did not move.
    expect(await poll(b2)).toMatchObject({ position: 3, seats_ahead: 2, outlook: 'GOOD' });

    // The other show's front, then the two seats ahead of a3: all that is left is its own.
    await decideNextBatch();
    expect(await poll(b2)).toMatchObject({ position: 2, seats_ahead: 0, outlook: 'GOOD' });
    await decideNextBatch();
    // Nothing ahead of it in its show, and no seat left: still UNLIKELY (a hold may lapse).
    expect(await poll(a3)).toMatchObject({ position: 2, seats_ahead: 0, outlook: 'UNLIKELY' });
    await decideNextBatch();
    await decideNextBatch();
    const decided = await Promise.all([a1, a2, a3].map((id) => waitForDecision(api.app, id)));
    expect(decided.map((booking) => booking.status)).toEqual(['HELD', 'HELD', 'FAILED']);
    expect(decided[0]).not.toHaveProperty('seats_ahead');
    expect(decided[0]).not.toHaveProperty('outlook');
  });

  it('a batch whose add failed gives its seats back: requests admitted behind it do not count them', async () => {
    const show = await createShow(api.app, { total_seats: 10 });
    // As the API's intake does when queue.add fails: admitted into a job, then unregistered.
    const lost: BookingJob = {
      id: randomUUID(),
      show_id: show.id,
      customer_email: 'lost@example.com',
      seat_count: 4,
      section: null,
      seats: null,
      accepted_at: new Date().toISOString(),
      idempotency_key: null,
      request_id: 'test',
    };
    const { admitted } = await index.admit(randomUUID(), [{ id: lost.id, copy: lost, line: { request: lost, salesOpenAt: 0 } }]);
    expect(admitted).toEqual([{ kind: 'job', position: expect.any(Number) }]);
    const ahead = await book(show.id, { seat_count: 1 });
    await index.unregister([lost]);
    const behind = await book(show.id, { seat_count: 2 });
    await counted(behind);
    // Admitted behind the lost batch, before its unregister: counted it, and no longer does.
    expect(await poll(ahead)).toMatchObject({ seats_ahead: 0, outlook: 'GOOD' });
    expect(await poll(behind)).toMatchObject({ seats_ahead: 1, outlook: 'GOOD' });
    await decideNextBatch();
    await decideNextBatch();
  });

  it('a section is weighed against its own seats', async () => {
    const show = await createShow(api.app, {
      sections: [
        { name: 'A', rows: 1, seats_per_row: 2, price_cents: 100 },
        { name: 'B', rows: 1, seats_per_row: 4, price_cents: 50 },
      ],
    });
    const inA = await book(show.id, { seat_count: 2, section: 'A' });
    const alsoA = await book(show.id, { seat_count: 1, section: 'A' });
    const anywhere = await book(show.id, { seat_count: 1 });
    await counted(inA);
    expect(await poll(alsoA)).toMatchObject({ seats_ahead: 2, outlook: 'UNLIKELY' });
    expect(await poll(anywhere)).toMatchObject({ seats_ahead: 3, outlook: 'GOOD' });
    for (let batch = 0; batch < 3; batch++) await decideNextBatch();
  });

  it('a paused show: its requests still in the queue stand ahead of its held line, and stay ahead once parked back', async () => {
    const show = await createShow(api.app, { total_seats: 4 });
    const flowing = [await book(show.id, { seat_count: 2 }), await book(show.id, { seat_count: 1 })];
    await counted(flowing[0]!);
    expect((await call(api.app, 'POST', `/admin/shows/${show.id}/pause`, { admin: true })).status).toBe(200);
    const held = await book(show.id, { seat_count: 2 });
    // Three seats ahead in the queue, its own two: more than the four.
    expect(await poll(held)).toMatchObject({ phase: 'IN_LINE', position: 1, paused: true, seats_ahead: 3, outlook: 'UNLIKELY' });
    // A worker takes the first batch: the show is paused, so it goes back into the held line,
    // first. The request still in the queue counts ahead of it (resumed now, the queue's batch
    // would be decided before the line's release), and both count ahead of the newcomer.
    await decideNextBatch();
    expect(await poll(flowing[0]!)).toMatchObject({ position: 1, paused: true, seats_ahead: 1, outlook: 'GOOD' });
    expect(await poll(held)).toMatchObject({ position: 2, paused: true, seats_ahead: 3, outlook: 'UNLIKELY' });
    // The second is parked too, behind the first: the held line alone, exact, as before.
    await decideNextBatch();
    expect(await poll(flowing[0]!)).toMatchObject({ position: 1, seats_ahead: 0, outlook: 'GOOD' });
    expect(await poll(flowing[1]!)).toMatchObject({ position: 2, seats_ahead: 2, outlook: 'GOOD' });
    expect(await poll(held)).toMatchObject({ position: 3, paused: true, seats_ahead: 3, outlook: 'UNLIKELY' });
    for (const id of [...flowing, held]) expect((await call(api.app, 'POST', `/booking/${id}/cancel`)).status).toBe(200);
  });
});
