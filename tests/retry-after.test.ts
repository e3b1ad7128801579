import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { MAX_RETRY_AFTER_SECONDS, RetryAfterAdvisor, ShowDrainRates } from '../services/api/retry-after.js';
import { QUEUES } from '../shared/queue/catalog.js';
import { openQueue } from '../shared/queue/queues.js';
import { RequestIndex } from '../shared/queue/request-index.js';
import { openTestApi } from './support/context.js';
import { call, createShow } from './support/http.js';

/** Queued clients are told to poll less often the further back they are, and polls have their own budget. */

const { ctx, api } = await openTestApi();
const show: { id: string } = await createShow(api.app, { total_seats: 100 });

describe('Retry-After for queued requests', () => {
  it('follows place in line ÷ the drain rate measured from the taken counter', async () => {
    // The counter workers advance (markTaken), in the test file's own Redis keys.
    const queue = openQueue(QUEUES.bookings, ctx.redis, ctx.config.QUEUE_PREFIX);
    const line = new RequestIndex(ctx.redis, queue);
    let clock = 1_000_000;
    const advisor = new RetryAfterAdvisor(() => line.taken(), () => clock);

    // No rate measured yet: the old heuristic (1 s near the front, up to 5 s far back).
    expect(advisor.secondsFor(10)).toBe(1);
    expect(advisor.secondsFor(50_000)).toBe(5);
    await advisor.settled();

    // Workers take 200 requests a second for 3 seconds.
    for (let second = 0; second < 3; second++) {
      await line.markTaken(Array.from({ length: 200 }, () => ({ id: randomUUID(), show_id: show.id, seat_count: 1 })), randomUUID());
      clock += 1_000;
      advisor.secondsFor(0);
      await advisor.settled();
    }
    expect(advisor.drainRate()).toBeCloseTo(200, 5);
    // Half the expected wait: position 2,000 at 200/s is 10 s away, so poll in 5.
    expect(advisor.secondsFor(2_000)).toBe(5);
    expect(advisor.secondsFor(100)).toBe(1);
    expect(advisor.secondsFor(1_000_000)).toBe(MAX_RETRY_AFTER_SECONDS);
    // The poll's estimated_wait_seconds is the whole expected wait, unclamped.
    expect(advisor.expectedWaitSeconds(2_000)).toBe(10);
    expect(advisor.expectedWaitSeconds(1_000_000)).toBe(5_000);

    // Workers stop: once the window holds no progress, nothing drains and the heuristic is back.
    for (let second = 0; second < 12; second++) {
      clock += 1_000;
      advisor.secondsFor(0);
      await advisor.settled();
    }
    expect(advisor.drainRate()).toBe(0);
    expect(advisor.secondsFor(2_000)).toBe(1);
    expect(advisor.expectedWaitSeconds(2_000)).toBeNull(); // unknown: absent from the poll
    await queue.close();
  });

  it("a show's expected wait follows that show's own decision rate, not the queue's", async () => {
    const queue = openQueue(QUEUES.bookings, ctx.redis, ctx.config.QUEUE_PREFIX);
    const line = new RequestIndex(ctx.redis, queue);
    const [fast, slow] = [await createShow(api.app, { total_seats: 10 }), await createShow(api.app, { total_seats: 10 })];
    let clock = 5_000_000;
    const rates = new ShowDrainRates((showId) => line.line.taken(showId), () => clock);
    const ask = async () => {
      const waits = [rates.expectedWaitSeconds(fast.id, 99), rates.expectedWaitSeconds(slow.id, 99)];
      await rates.settled();
      return waits;
    };
    const taken = (showId: string, count: number) => Array.from({ length: count }, () => ({ id: randomUUID(), show_id: showId, seat_count: 1 }));
    // Unknown before any sample spans time: absent from the poll.
    expect(await ask()).toEqual([null, null]);
    // Workers take 100 of one show a second and 10 of the other, from the same queue.
    for (let second = 0; second < 3; second++) {
      await line.markTaken([...taken(fast.id, 100), ...taken(slow.id, 10)], randomUUID());
      clock += 1_000;
      await ask();
    }
    // 100 requests ahead and this one: one second at 100/s, ten at 10/s.
    expect(rates.expectedWaitSeconds(fast.id, 99)).toBe(1);
    expect(rates.expectedWaitSeconds(slow.id, 99)).toBe(10);
    await queue.close();
  });

  it('POST /booking and status polls carry the advice', async () => {
    const booked = await call(api.app, 'POST', '/booking', { body: { show_id: show.id, customer_email: 'advice@example.com', seat_count: 1 } });
    expect(booked.status).toBe(202);
    expect(Number(booked.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    const status = await call(api.app, 'GET', booked.body.status_url);
    expect(status.body.status).toBe('QUEUED');
    expect(Number(status.headers['retry-after'])).toBeGreaterThanOrEqual(1);
  });
});

describe('status polls have their own rate limit', () => {
  it('polling does not use up the booking budget, and has a budget of its own', async () => {
    const limited = await ctx.startApi({ RATE_LIMIT_PER_MINUTE: '3', STATUS_RATE_LIMIT_PER_MINUTE: '8' });
    const client = { remoteAddress: '10.9.9.9' };
    const book = (n: number) =>
      limited.app.inject({
        method: 'POST',
        url: '/booking',
        ...client,
        payload: { show_id: show.id, customer_email: `nat-${n}@example.com`, seat_count: 1 },
      });
    const first = await book(1);
    expect(first.statusCode).toBe(202);
    const statusUrl = (first.json() as { status_url: string }).status_url;
    const polls: number[] = [];
    for (let n = 0; n < 9; n++) polls.push((await limited.app.inject({ method: 'GET', url: statusUrl, ...client })).statusCode);
    // Eight polls fit the status budget, the ninth is over it...
    expect(polls).toEqual([200, 200, 200, 200, 200, 200, 200, 200, 429]);
    // ...and the booking budget still has its two requests left.
    expect((await book(2)).statusCode).toBe(202);
    expect((await book(3)).statusCode).toBe(202);
    expect((await book(4)).statusCode).toBe(429);
  });
});
