import { describe, expect, it } from 'vitest';
import type { RunningWorker } from '../services/worker/worker.js';
import { ShowLine } from '../shared/queue/show-line.js';
import { openListeningTestApi } from './support/context.js';
import { call, createShow, waitForDecision } from './support/http.js';
import { SseStream } from './support/sse.js';
import { waitFor } from './support/wait.js';

/**
 * Telling buyers where they stand (issue 13): while a request waits in its show's held line,
 * polls carry `seats_ahead` and `outlook`, computed from Redis alone (the held line, and the
 * available-seat counts each writer recounts after a change). Real Postgres and Redis.
 */

const { ctx, api, baseUrl: base } = await openListeningTestApi({ HOLD_SECONDS: '300' });
let worker: RunningWorker | undefined;

let buyer = 0;
async function book(showId: string, body: Record<string, unknown>): Promise<string> {
  const accepted = await call(api.app, 'POST', '/booking', { body: { show_id: showId, customer_email: `outlook${buyer++}@example.com`, ...body } });
  expect(accepted.status, JSON.stringify(accepted.body)).toBe(202);
  return accepted.body.id as string;
}
const poll = async (id: string) => (await call(api.app, 'GET', `/booking/${id}/status`)).body;
const pause = async (showId: string) => expect((await call(api.app, 'POST', `/admin/shows/${showId}/pause`, { admin: true })).status).toBe(200);
const resume = async (showId: string) => expect((await call(api.app, 'POST', `/admin/shows/${showId}/resume`, { admin: true })).status).toBe(200);

describe('seats_ahead and outlook in a paused line', () => {
  it('front and back of the line: GOOD while what is asked ahead fits, UNLIKELY beyond; those behind move up as one leaves', async () => {
    const show = await createShow(api.app, { total_seats: 3 });
    await pause(show.id);
    const line = [await book(show.id, { seat_count: 1 }), await book(show.id, { seat_count: 2 }), await book(show.id, { seat_count: 1 }), await book(show.id, { seat_count: 1 })];
    const expected = [
      { position: 1, seats_ahead: 0, outlook: 'GOOD' },
      { position: 2, seats_ahead: 1, outlook: 'GOOD' },
      { position: 3, seats_ahead: 3, outlook: 'UNLIKELY' },
      { position: 4, seats_ahead: 4, outlook: 'UNLIKELY' },
    ];
    for (const [at, id] of line.entries()) {
      expect(await poll(id)).toMatchObject({ status: 'QUEUED', phase: 'IN_LINE', paused: true, ...expected[at] });
    }
    // The full view carries the same fields.
    expect((await call(api.app, 'GET', `/booking/${line[3]}`)).body).toMatchObject({ status: 'QUEUED', seats_ahead: 4, outlook: 'UNLIKELY' });

    // The two-seat request leaves the line: its seats are no longer ahead of anyone.
    expect((await call(api.app, 'POST', `/booking/${line[1]}/cancel`)).status).toBe(200);
    expect(await poll(line[2]!)).toMatchObject({ position: 2, seats_ahead: 1, outlook: 'GOOD' });
    expect(await poll(line[3]!)).toMatchObject({ position: 3, seats_ahead: 2, outlook: 'GOOD' });

    // The booking stream sends the same JSON as the poll.
    const stream = await SseStream.open(`${base}/booking/${line[3]}/events`);
    const first = await stream.next((event) => event.event === 'status');
    expect(JSON.parse(first.data!)).toMatchObject({ status: 'QUEUED', seats_ahead: 2, outlook: 'GOOD' });
    expect(JSON.parse(first.data!)).toEqual(await poll(line[3]!));
    stream.close();

    // Resumed: decided in order, and the fields go with the queue.
    worker ??= await ctx.startWorker();
    await resume(show.id);
    const decided = await Promise.all([line[0]!, line[2]!, line[3]!].map((id) => waitForDecision(api.app, id)));
    expect(decided.map((booking) => booking.status)).toEqual(['HELD', 'HELD', 'HELD']);
    expect(decided[0]).not.toHaveProperty('outlook');
    expect(decided[0]).not.toHaveProperty('seats_ahead');
  });

  it('follows the seats as they go and come back: a hold taken lowers the outlook, its cancel raises it', async () => {
    worker ??= await ctx.startWorker();
    const show = await createShow(api.app, { total_seats: 3 });
    const held = await book(show.id, { seat_count: 2 });
    expect(await waitForDecision(api.app, held)).toMatchObject({ status: 'HELD' });
    // The worker recounts after its decision batch, before anything else asks it to.
    const counts = new ShowLine(ctx.redis, `${ctx.config.QUEUE_PREFIX}:intake:`).keysOf(show.id).available;
    await waitFor(async () => ((await ctx.redis.hget(counts, '*')) === '1' ? true : undefined), 'the decision batch to recount the show', 10_000);
    await pause(show.id);
    const front = await book(show.id, { seat_count: 1 });
    const back = await book(show.id, { seat_count: 1 });
    // One seat left: the front fits, the back does not.
    expect(await poll(front)).toMatchObject({ seats_ahead: 0, outlook: 'GOOD' });
    expect(await poll(back)).toMatchObject({ seats_ahead: 1, outlook: 'UNLIKELY' });
    // The hold is cancelled: its two seats are AVAILABLE again once the settle's recount lands.
    expect((await call(api.app, 'POST', `/booking/${held}/cancel`)).status).toBe(200);
    await waitFor(async () => ((await poll(back)).outlook === 'GOOD' ? true : undefined), 'the back of the line to turn GOOD', 10_000);
    expect(await poll(back)).toMatchObject({ seats_ahead: 1, outlook: 'GOOD', paused: true });
    await resume(show.id);
    expect((await Promise.all([front, back].map((id) => waitForDecision(api.app, id)))).map((b) => b.status)).toEqual(['HELD', 'HELD']);
  });

  it("a section's requests are weighed against their section's seats, best available against the show's", async () => {
    const show = await createShow(api.app, {
      sections: [
        { name: 'A', rows: 1, seats_per_row: 2, price_cents: 100 },
        { name: 'B', rows: 1, seats_per_row: 4, price_cents: 50 },
      ],
    });
    await pause(show.id);
    const inA = await book(show.id, { seat_count: 2, section: 'A' });
    const alsoA = await book(show.id, { seat_count: 1, section: 'A' });
    const anywhere = await book(show.id, { seat_count: 1 });
    expect(await poll(inA)).toMatchObject({ seats_ahead: 0, outlook: 'GOOD' });
    // Two seats ahead and one more do not fit in A's two, though the show has six.
    expect(await poll(alsoA)).toMatchObject({ seats_ahead: 2, outlook: 'UNLIKELY' });
    expect(await poll(anywhere)).toMatchObject({ seats_ahead: 3, outlook: 'GOOD' });
    for (const id of [inA, alsoA, anywhere]) expect((await call(api.app, 'POST', `/booking/${id}/cancel`)).status).toBe(200);
  });
});
