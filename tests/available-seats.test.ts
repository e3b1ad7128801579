import { setTimeout as delay } from 'node:timers/promises';
import { sql } from 'drizzle-orm';
import { afterAll, describe, expect, it } from 'vitest';
import { AvailableSeats } from '../shared/booking/available-seats.js';
import { QUEUES } from '../shared/queue/catalog.js';
import { openQueue } from '../shared/queue/queues.js';
import { RequestIndex } from '../shared/queue/request-index.js';
import { openTestApi } from './support/context.js';
import { createShow } from './support/http.js';
import { waitFor } from './support/wait.js';

/**
 * The available-seat counts in Redis (shared/booking/available-seats.ts) under a show that keeps
 * changing: recounted from Postgres at once after a quiet spell, then at most once per interval
 * however many changes arrive, and never left without the last change. Real Postgres and Redis.
 */

const { ctx, api } = await openTestApi();
const queue = openQueue(QUEUES.bookings, ctx.redis, ctx.config.QUEUE_PREFIX);
const line = new RequestIndex(ctx.redis, queue).line;
afterAll(() => queue.close());

/** Notes when each recount starts; the counting itself is the real one. */
class WatchedSeats extends AvailableSeats {
  readonly starts: number[] = [];
  override async recount(showId: string): Promise<void> {
    this.starts.push(Date.now());
    return super.recount(showId);
  }
}

const countOf = (showId: string) => ctx.redis.hget(line.keysOf(showId).available, '*');
/** A seat leaves the show: a change of what is available that needs no booking. */
const removeOneSeat = (showId: string) =>
  ctx.db.execute(sql`DELETE FROM seats WHERE id = (SELECT id FROM seats WHERE show_id = ${showId} AND status = 'AVAILABLE' LIMIT 1)`);

describe('available-seat recounts', () => {
  it('a show changing all the time is recounted at once, then once per interval, and ends with its last change counted', async () => {
    const show = await createShow(api.app, { total_seats: 20 });
    const interval = 150;
    const seats = new WatchedSeats(ctx.redis, ctx.db, line, undefined, interval);
    const first = Date.now();
    // A change every 10 ms for 600 ms: back to back, that was one recount after another.
    for (let change = 0; change < 60; change++) {
      seats.refresh([show.id]);
      await delay(10);
    }
    await removeOneSeat(show.id);
    seats.refresh([show.id]);
    // How long the changes really lasted: on a busy machine 60 timers of 10 ms take well over 600 ms.
    const changing = Date.now() - first;
    await seats.settled();

    expect(seats.starts[0]! - first).toBeLessThan(interval);
    // The last recount is settled()'s, which does not wait out the interval.
    const gaps = seats.starts.slice(1, -1).map((at, index) => at - seats.starts[index]!);
    for (const gap of gaps) expect(gap).toBeGreaterThanOrEqual(interval - 1);
    // One recount per 150 ms while the changes lasted, and the last change's (about 6 for the
    // nominal 600 ms), where back-to-back recounts made dozens.
    expect(seats.starts.length).toBeLessThanOrEqual(Math.ceil(changing / interval) + 2);
    expect(seats.starts.length).toBeLessThan(60);
    expect(seats.starts.length).toBeGreaterThanOrEqual(2);
    expect(await countOf(show.id)).toBe('19');
  });

  it('settled() counts a change that waits out the interval at once', async () => {
    const show = await createShow(api.app, { total_seats: 20 });
    const seats = new WatchedSeats(ctx.redis, ctx.db, line, undefined, 60_000);
    seats.refresh([show.id]);
    await waitFor(async () => ((await countOf(show.id)) === '20' ? true : undefined), 'the first recount', 10_000);
    // Within the minute's interval: the change is only marked.
    await removeOneSeat(show.id);
    seats.refresh([show.id]);
    expect(seats.starts).toHaveLength(1);
    const asked = Date.now();
    await seats.settled();
    expect(Date.now() - asked).toBeLessThan(10_000);
    expect(seats.starts).toHaveLength(2);
    expect(await countOf(show.id)).toBe('19');
  });
});
