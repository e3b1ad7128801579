import type { FastifyRateLimitOptions, FastifyRateLimitStore, FastifyRateLimitStoreCtor } from '@fastify/rate-limit';
import type { RouteOptions } from 'fastify';
import { TurnBatcher } from '../../shared/queue/turn-batcher.js';
import { defineScripts, type RedisClient, type ScriptCommand } from '../../shared/redis.js';

/**
 * @fastify/rate-limit's counters in Redis, counted for a whole turn of the event loop at once.
 *
 * The plugin's own Redis store sends one script per request: under a burst that is a Redis
 * command (its encoding, its write, its reply, its promise) for every submit and every poll,
 * which bench/RESULTS.md measured at about a sixth of a booking's CPU. Here the hits of one
 * turn (every client's, every route's) go to Redis as one script call, which adds each
 * counter's hits at once and returns the totals. Each request is then given the count it
 * would have had alone: the n-th of a client's k hits in the turn sees total − k + n. So the
 * limit is exactly as strict as the plugin's store, across replicas too (the counters are the
 * same Redis keys, under the same prefix); only the round trips are shared.
 *
 * On a Redis Cluster the keys share QUEUE_PREFIX's hash tag (shared/config.ts requires one),
 * so one script may touch them all.
 */

const COUNT_HITS = `
-- KEYS: the counters; ARGV: for each key, its hits in this call and its window (ms).
-- Returns, for each key, its count after the hits and the ms left in its window.
local replies = {}
for index, key in ipairs(KEYS) do
  local hits = tonumber(ARGV[2 * index - 1])
  local window = tonumber(ARGV[2 * index])
  local count = redis.call('INCRBY', key, hits)
  local ttl = window
  if count == hits then
    redis.call('PEXPIRE', key, window)
  else
    ttl = redis.call('PTTL', key)
    -- A counter without an expiry would never reset: give it one.
    if ttl < 0 then
      redis.call('PEXPIRE', key, window)
      ttl = window
    end
  end
  replies[2 * index - 1] = count
  replies[2 * index] = ttl
end
return replies
`;

/** A counter's state after a hit, as the plugin reads it. */
type Hit = { current: number; ttl: number };
type HitRequest = { key: string; windowMs: number };

/** Counts each turn's hits in one script call; shared by the plugin's root store and each route's child. */
export class TurnCounter {
  private readonly batcher: TurnBatcher<HitRequest, Hit>;
  private readonly scripts: { rateLimitCountHits: ScriptCommand };

  constructor(redis: RedisClient, maxPerCall = 1_000) {
    this.scripts = defineScripts(redis, { rateLimitCountHits: COUNT_HITS });
    this.batcher = new TurnBatcher((hits) => this.count(hits), maxPerCall);
  }

  hit(key: string, windowMs: number): Promise<Hit> {
    return this.batcher.add({ key, windowMs });
  }

  private async count(hits: HitRequest[]): Promise<Hit[]> {
    // One entry per counter: its hits in this call and the window of its first hit (a
    // counter's window is its route's, the same for every hit).
    const counters = new Map<string, { hits: number; windowMs: number }>();
    for (const { key, windowMs } of hits) {
      const counter = counters.get(key);
      if (counter) counter.hits++;
      else counters.set(key, { hits: 1, windowMs });
    }
    const keys = [...counters.keys()];
    const args = [...counters.values()].flatMap(({ hits: count, windowMs }) => [count, windowMs]);
    const replies = (await this.scripts.rateLimitCountHits(keys.length, ...keys, ...args)) as number[];
    const totals = new Map(keys.map((key, index) => [key, { count: replies[2 * index]!, ttl: replies[2 * index + 1]!, seen: 0 }]));
    return hits.map(({ key }) => {
      const total = totals.get(key)!;
      total.seen++;
      return { current: total.count - counters.get(key)!.hits + total.seen, ttl: total.ttl };
    });
  }
}

/**
 * The store class the plugin is given (`store:`): every instance, the root and each route's
 * child (its keys prefixed with the route, as the plugin's own store does), counts through
 * one TurnCounter.
 */
export function turnCountedStore(counter: TurnCounter, nameSpace: string): FastifyRateLimitStoreCtor {
  class TurnCountedStore implements FastifyRateLimitStore {
    constructor(
      _options: FastifyRateLimitOptions,
      private readonly prefix = nameSpace,
    ) {}

    incr(key: string, callback: (error: Error | null, result?: Hit) => void, timeWindow: number): void {
      counter.hit(this.prefix + key, timeWindow).then(
        (hit) => callback(null, hit),
        (error: unknown) => callback(error instanceof Error ? error : new Error(String(error))),
      );
    }

    child(routeOptions: RouteOptions & { path: string; prefix: string }): FastifyRateLimitStore {
      const route = (routeOptions as { routeInfo?: { method?: unknown; url?: unknown } }).routeInfo ?? {};
      return new TurnCountedStore({}, `${this.prefix}${String(route.method)}${String(route.url)}-`);
    }
  }
  return TurnCountedStore;
}
