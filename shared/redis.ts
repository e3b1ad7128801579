import { Redis, type RedisOptions } from 'ioredis';

/**
 * Two kinds of connection, as BullMQ's production guide says:
 * - producers (the API) fail fast: with no offline queue a command fails at once while Redis
 *   is down, so the API answers 503 instead of holding a request it may never enqueue;
 * - workers wait: `maxRetriesPerRequest: null` lets blocking commands ride out a restart.
 */
export function createProducerConnection(url: string, options: RedisOptions = {}): Redis {
  return new Redis(url, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 2_000,
    retryStrategy: (times) => Math.min(times * 200, 2_000),
    ...options,
  });
}

export function createWorkerConnection(url: string, options: RedisOptions = {}): Redis {
  return new Redis(url, {
    maxRetriesPerRequest: null,
    retryStrategy: (times) => Math.min(times * 200, 2_000),
    ...options,
  });
}

export class RedisPolicyError extends Error {
  override name = 'RedisPolicyError';
}

/**
 * Queued bookings live in Redis until a worker decides them; a Redis that evicts keys under
 * memory pressure would silently drop accepted requests. Refuse to run on one.
 */
export async function assertNoEviction(redis: Redis): Promise<void> {
  let policy: string | undefined;
  try {
    const reply = (await redis.config('GET', 'maxmemory-policy')) as string[];
    policy = reply[1];
  } catch {
    // Managed Redis often disables CONFIG; INFO memory carries the same fact.
    const info = await redis.info('memory');
    policy = /maxmemory_policy:(\S+)/.exec(info)?.[1];
  }
  if (policy !== 'noeviction') {
    throw new RedisPolicyError(
      `Redis maxmemory-policy is "${policy ?? 'unknown'}"; it must be "noeviction" or queued bookings can be evicted and lost. ` +
        'Set it with: redis-cli CONFIG SET maxmemory-policy noeviction (and in redis.conf).',
    );
  }
}

/** Resolves once the connection is ready, or rejects after `timeoutMs`. */
export async function waitForReady(redis: Redis, timeoutMs = 10_000): Promise<void> {
  if (redis.status === 'ready') return;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`Redis not reachable within ${timeoutMs} ms`));
    }, timeoutMs);
    const onReady = () => {
      cleanup();
      resolve();
    };
    const cleanup = () => {
      clearTimeout(timer);
      redis.off('ready', onReady);
    };
    redis.on('ready', onReady);
  });
}
