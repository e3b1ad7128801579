import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { LiveUpdates } from '../services/api/live/live-updates.js';
import type { BookingStanding, StatusView } from '../shared/booking/standing.js';
import { ChangePublisher, ChangeSubscriber } from '../shared/live/changes.js';
import { createLogger } from '../shared/logger.js';
import { redisTarget } from '../shared/redis.js';
import { createTestContext, type TestContext } from './support/context.js';
import { waitFor } from './support/wait.js';

/**
 * A status poll's `Prefer: wait` (LiveUpdates.startWait): the watch starts before the poll's
 * own read, so a change made during that read reaches the wait through the real change channel
 * (Redis pub/sub) and the poll reads where the booking stands once, not twice, before it waits.
 * Where a booking stands is given here by a table the test writes (the real BookingStanding
 * is covered by the status tests); the channel, subscriber and publisher are the real ones.
 */

let ctx: TestContext;
let live: LiveUpdates;
let publisher: ChangePublisher;
let publishing: Redis;
const views = new Map<string, StatusView>();
const reads: string[] = [];
let taken = 0;

beforeAll(async () => {
  ctx = await createTestContext();
  const standing = {
    status: async (id: string) => {
      reads.push(id);
      return views.get(id) ?? ('unknown' as const);
    },
  } as unknown as BookingStanding;
  const subscriber = ChangeSubscriber.open(redisTarget(ctx.config), ctx.config.QUEUE_PREFIX);
  live = new LiveUpdates(subscriber, {
    standing,
    // The line moves on every tick: a watch that follows positions reads again each time.
    lineTaken: async () => ++taken,
    db: ctx.db,
    settings: { holdSeconds: 600, maxSeatsPerCustomer: 6, waitlistOfferSeconds: 600 },
    lines: { of: async () => 0 },
    maxStreams: 10,
    logger: createLogger(ctx.config, 'poll-wait-test'),
  });
  publishing = new Redis(ctx.config.REDIS_URL, { connectionName: `${ctx.config.QUEUE_PREFIX}:publisher` });
  publisher = new ChangePublisher(publishing, ctx.config.QUEUE_PREFIX);
  // The subscription is live once a published message comes back through it.
  const probe = randomUUID();
  views.set(probe, queued(probe));
  const wait = live.startWait(probe)!;
  await waitFor(async () => {
    publisher.publishBookings([{ id: probe, status: 'QUEUED', showId: randomUUID(), seats: [] }]);
    return reads.includes(probe) ? true : undefined;
  }, 'the subscriber to hear the channel');
  wait.cancel();
});
afterAll(async () => {
  await live?.close();
  publishing?.disconnect();
  await ctx?.cleanup();
});

const queued = (id: string): StatusView => ({ id, status: 'QUEUED', position: 3, updated_at: new Date().toISOString() });
const held = (id: string): StatusView => ({ id, status: 'HELD', seats: ['A-1'], updated_at: new Date().toISOString() });

it('sees a decision made between the watch and the poll’s own read, without reading again first', async () => {
  const id = randomUUID();
  views.set(id, queued(id));
  const wait = live.startWait(id)!;
  // The poll's own read would start here and answer QUEUED, while the decision lands meanwhile:
  const stale = queued(id);
  views.set(id, held(id));
  publisher.publishBookings([{ id, status: 'HELD', showId: randomUUID(), seats: ['A-1'] }]);
  await waitFor(async () => (reads.includes(id) ? true : undefined), 'the watch to read after the message');
  const answer = await wait.until(stale, 30_000);
  expect(answer).toMatchObject({ id, status: 'HELD' });
  // One read, the one the message asked for: starting the watch read nothing.
  expect(reads.filter((read) => read === id)).toHaveLength(1);
});

it('waits on the poll’s own answer, reading nothing until a change names the booking', async () => {
  const id = randomUUID();
  views.set(id, queued(id));
  const wait = live.startWait(id)!;
  const waiting = wait.until(queued(id), 30_000);
  expect(live.bookings.size).toBeGreaterThan(0);
  views.set(id, held(id));
  publisher.publishBookings([{ id, status: 'HELD', showId: randomUUID(), seats: ['A-1'] }]);
  expect(await waiting).toMatchObject({ id, status: 'HELD' });
  expect(reads.filter((read) => read === id)).toHaveLength(1);
});

it('answers at once, releasing its slot and watch, when the client has gone or the poll cancels', async () => {
  const id = randomUUID();
  views.set(id, queued(id));
  const wait = live.startWait(id)!;
  // The client went away before the wait began: it answers at once.
  wait.abandon();
  expect(await wait.until(queued(id), 30_000)).toMatchObject({ status: 'QUEUED' });
  // And while waiting.
  const gone = live.startWait(randomUUID())!;
  const waiting = gone.until(queued(randomUUID()), 30_000);
  gone.abandon();
  expect(await waiting).toMatchObject({ status: 'QUEUED' });
  const other = live.startWait(randomUUID())!;
  other.cancel();
  // Every slot is free again: the cap admits as many waits as before.
  const all = Array.from({ length: 10 }, () => live.startWait(randomUUID()));
  expect(all.every((slot) => slot !== null)).toBe(true);
  expect(live.startWait(randomUUID())).toBeNull();
  all.forEach((slot) => slot!.cancel());
  expect(live.bookings.size).toBe(0);
});

it('does not read a waiting answer\'s booking again when the line moves, while a stream following its place is read each tick', async () => {
  const waited = randomUUID();
  const streamed = randomUUID();
  views.set(waited, queued(waited));
  views.set(streamed, queued(streamed));
  const wait = live.startWait(waited)!;
  const waiting = wait.until(queued(waited), 30_000);
  const unwatch = live.bookings.watch(streamed, () => {});
  const readsOf = (id: string) => reads.filter((read) => read === id).length;
  // The stream's first read, then two more from ticks that saw the line move.
  await waitFor(async () => (readsOf(streamed) >= 3 ? true : undefined), 'two ticks to re-read the stream\'s booking', 10_000);
  expect(readsOf(waited)).toBe(0);
  unwatch();
  wait.abandon();
  expect(await waiting).toMatchObject({ id: waited, status: 'QUEUED' });
});
