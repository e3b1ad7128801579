import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { TurnCounter } from '../services/api/rate-limit-store.js';
import { openTestContext } from './support/context.js';
import { ProcessRegistry, RedisServer } from './support/processes.js';
import { waitFor } from './support/wait.js';

/**
 * The rate limiter's counters (services/api/rate-limit-store.ts): a turn's hits reach Redis as
 * one script call, yet each request is counted as if it had come alone, and the limit holds
 * exactly across replicas.
 */

const registry = new ProcessRegistry({});
// Registered before the context's hook, so it runs after it: the API's Redis outlives the API.
afterAll(() => registry.stopAll());
// A Redis of this file's own: its command counts (INFO commandstats) are this file's alone.
const server = await RedisServer.start(registry);
const ctx = await openTestContext({ REDIS_URL: server.url });

/** How many scripts Redis has run (EVALSHA and EVAL). */
async function scriptsRun(): Promise<number> {
  const stats = (await ctx.redis.info('commandstats')) as string;
  return [...stats.matchAll(/^cmdstat_eval(?:sha)?:calls=(\d+)/gm)].reduce((sum, match) => sum + Number(match[1]), 0);
}

/** The scripts Redis ran while `work` ran (nothing else talks to this file's Redis meanwhile). */
async function scriptCallsDuring(work: () => Promise<void>): Promise<number> {
  const before = await scriptsRun();
  await work();
  return (await scriptsRun()) - before;
}

describe('TurnCounter', () => {
  const counter = new TurnCounter(ctx.redis);
  const prefix = `${ctx.config.QUEUE_PREFIX}:ratelimit:unit-${randomUUID()}:`;

  it('sends one turn of hits as one script call and gives each hit the count it would have had alone', async () => {
    let hits: Array<{ current: number; ttl: number }> = [];
    const calls = await scriptCallsDuring(async () => {
      // Interleaved, as requests from two clients arrive: each client's hits keep their order.
      hits = await Promise.all([0, 1, 2, 3, 4, 5, 6, 7, 8, 9].map((index) => counter.hit(`${prefix}${index % 3 === 0 ? 'b' : 'a'}`, 60_000)));
    });
    expect(calls).toBe(1);
    // Hits 0, 3, 6, 9 are b's; the rest are a's.
    expect(hits.map((hit) => hit.current)).toEqual([1, 1, 2, 2, 3, 4, 3, 5, 6, 4]);
    for (const hit of hits) {
      expect(hit.ttl).toBeGreaterThan(0);
      expect(hit.ttl).toBeLessThanOrEqual(60_000);
    }
    expect(await ctx.redis.get(`${prefix}a`)).toBe('6');
    expect(await ctx.redis.get(`${prefix}b`)).toBe('4');
    // A later turn carries on from the totals.
    expect((await counter.hit(`${prefix}a`, 60_000)).current).toBe(7);
  });

  it('starts a window with the first hit, keeps it on later hits, and starts again once it lapses', async () => {
    const key = `${prefix}window`;
    await counter.hit(key, 60_000);
    const pttl = await ctx.redis.pttl(key);
    expect(pttl).toBeGreaterThan(0);
    expect(pttl).toBeLessThanOrEqual(60_000);
    // A later hit does not push the window out.
    await counter.hit(key, 60_000);
    expect(await ctx.redis.pttl(key)).toBeLessThanOrEqual(pttl);

    const short = `${prefix}short`;
    await Promise.all([counter.hit(short, 50), counter.hit(short, 50)]);
    await waitFor(async () => ((await ctx.redis.exists(short)) === 0 ? true : undefined), 'the short window to lapse', 5_000);
    expect((await counter.hit(short, 50)).current).toBe(1);
  });

  it('gives a counter left without an expiry one, so it cannot block its client for good', async () => {
    const key = `${prefix}stuck`;
    await ctx.redis.set(key, '41');
    const hit = await counter.hit(key, 60_000);
    expect(hit).toEqual({ current: 42, ttl: 60_000 });
    expect(await ctx.redis.pttl(key)).toBeGreaterThan(0);
  });
});

describe('the API with RATE_LIMIT_PER_MINUTE', () => {
  const replicas = [ctx.startApi({ RATE_LIMIT_PER_MINUTE: '5' }), ctx.startApi({ RATE_LIMIT_PER_MINUTE: '5' })];
  afterAll(async () => {
    for (const replica of replicas) await (await replica).close();
  });

  it('refuses exactly the requests past the limit when they arrive together at two replicas, counting each replica\'s turn in one call', async () => {
    const [first, second] = await Promise.all(replicas);
    const client = '10.9.8.7';
    let statuses: number[] = [];
    const calls = await scriptCallsDuring(async () => {
      const requests = [first!, second!].flatMap((api) => Array.from({ length: 6 }, () => api.app.inject({ method: 'GET', url: '/shows', remoteAddress: client })));
      statuses = (await Promise.all(requests)).map((reply) => reply.statusCode);
    });
    expect(statuses.filter((status) => status === 200)).toHaveLength(5);
    expect(statuses.filter((status) => status === 429)).toHaveLength(7);
    // Twelve requests, one script call per replica's turn (the plugin's own store sent twelve).
    expect(calls).toBeGreaterThanOrEqual(2);
    expect(calls).toBeLessThan(12);
  });

  it('counts the status route apart from the rest, under its own limit', async () => {
    const [api] = await Promise.all(replicas);
    const client = '10.9.8.6';
    for (let index = 0; index < 5; index++) {
      expect((await api!.app.inject({ method: 'GET', url: '/shows', remoteAddress: client })).statusCode).toBe(200);
    }
    expect((await api!.app.inject({ method: 'GET', url: '/shows', remoteAddress: client })).statusCode).toBe(429);
    // The status route has its own counter (STATUS_RATE_LIMIT_PER_MINUTE): an unknown id is 404, not 429.
    const status = await api!.app.inject({ method: 'GET', url: `/booking/${randomUUID()}/status`, remoteAddress: client });
    expect(status.statusCode).toBe(404);
    const keys = await ctx.redis.keys(`${ctx.config.QUEUE_PREFIX}:ratelimit:*${client}`);
    expect(keys.some((key) => key.includes('GET/booking/:id/status-'))).toBe(true);
  });
});
