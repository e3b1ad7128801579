import { Cluster, Redis, type RedisOptions } from 'ioredis';

/** A single Redis or a Redis Cluster: the services use whichever the configuration names. */
export type RedisClient = Redis | Cluster;

/**
 * Where Redis is: REDIS_URL, or, when REDIS_CLUSTER_NODES is set, those seed nodes of a cluster.
 * `queuePrefix` names the connections (see connectionName).
 */
export type RedisTarget = { url: string; clusterNodes?: string | undefined; queuePrefix?: string | undefined };

export const redisTarget = (config: { REDIS_URL: string; REDIS_CLUSTER_NODES?: string | undefined; QUEUE_PREFIX?: string }): RedisTarget => ({
  url: config.REDIS_URL,
  clusterNodes: config.REDIS_CLUSTER_NODES,
  queuePrefix: config.QUEUE_PREFIX,
});

/**
 * The CLIENT SETNAME of a connection the services open: `<QUEUE_PREFIX>:<role>`, the form
 * BullMQ gives the connections it opens itself (`<prefix>:<base64 of the queue>[...]`, its
 * workers' blocking ones and QueueEvents), so CLIENT LIST tells one deployment's connections
 * (or one test file's) from everyone else's by the prefix alone.
 */
export const connectionName = (queuePrefix: string, role: 'producer' | 'worker'): string => `${queuePrefix}:${role}`;

const namedAs = (target: RedisTarget | string, role: 'producer' | 'worker'): RedisOptions =>
  typeof target !== 'string' && target.queuePrefix ? { connectionName: connectionName(target.queuePrefix, role) } : {};

function connect(target: RedisTarget | string, options: RedisOptions): RedisClient {
  if (typeof target === 'string' || !target.clusterNodes) return new Redis(typeof target === 'string' ? target : target.url, options);
  const nodes = target.clusterNodes.split(',').map((node) => {
    const colon = node.lastIndexOf(':');
    return { host: node.slice(0, colon), port: Number(node.slice(colon + 1)) };
  });
  // Credentials and TLS of REDIS_URL apply to every node of the cluster.
  const url = new URL(target.url);
  const { enableOfflineQueue, enableAutoPipelining, retryStrategy, ...nodeOptions } = options;
  return new Cluster(nodes, {
    redisOptions: {
      ...nodeOptions,
      ...(url.username ? { username: decodeURIComponent(url.username) } : {}),
      ...(url.password ? { password: decodeURIComponent(url.password) } : {}),
      ...(url.protocol === 'rediss:' ? { tls: {} } : {}),
    },
    ...(enableOfflineQueue !== undefined ? { enableOfflineQueue } : {}),
    ...(enableAutoPipelining !== undefined ? { enableAutoPipelining } : {}),
    ...(retryStrategy ? { clusterRetryStrategy: (times: number) => retryStrategy(times) ?? null } : {}),
  });
}

/**
 * Two kinds of connection, as BullMQ's production guide says:
 * - producers (the API) fail fast: with no offline queue a command fails at once while Redis
 *   is down, so the API answers 503 instead of holding a request it may never enqueue;
 * - workers wait: `maxRetriesPerRequest: null` lets blocking commands ride out a restart.
 */
export function createProducerConnection(target: RedisTarget | string, options: RedisOptions = {}): RedisClient {
  return connect(target, {
    ...namedAs(target, 'producer'),
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 2_000,
    retryStrategy: (times) => Math.min(times * 200, 2_000),
    ...options,
  });
}

export function createWorkerConnection(target: RedisTarget | string, options: RedisOptions = {}): RedisClient {
  return connect(target, {
    ...namedAs(target, 'worker'),
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
export async function assertNoEviction(redis: RedisClient): Promise<void> {
  // On a cluster every master holds queue data (other deployments' prefixes hash elsewhere).
  const nodes = redis instanceof Cluster ? redis.nodes('master') : [redis];
  for (const node of nodes) await assertNodeNoEviction(node);
}

async function assertNodeNoEviction(redis: Redis): Promise<void> {
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
export async function waitForReady(redis: RedisClient, timeoutMs = 10_000): Promise<void> {
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

/** Deletes every key matching `pattern` on one node (SCAN, never KEYS): tears down a prefix. */
export async function deleteKeysMatching(redis: Redis, pattern: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1_000);
    cursor = next;
    if (keys.length > 0) await redis.del(...keys);
  } while (cursor !== '0');
}
