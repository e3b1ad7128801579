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
export type ConnectionRole = 'producer' | 'worker' | 'subscriber';

export const connectionName = (queuePrefix: string, role: ConnectionRole): string => `${queuePrefix}:${role}`;

const namedAs = (target: RedisTarget | string, role: ConnectionRole): RedisOptions =>
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
 *   is down, so the API answers 503 instead of holding a request it may never enqueue. A
 *   command in flight when its connection drops fails at once too, and is never sent again:
 *   ioredis would otherwise keep it until a reconnect succeeds (however long Redis stays away,
 *   maxRetriesPerRequest does not reach it) and then resend it, so the request that sent it
 *   hangs, and its add or script runs a second time after its client was already answered.
 *   Whether it ran the first time is unknown: the caller answers 503, and the idempotency key
 *   makes the client's retry safe (services/api/booking-intake.ts);
 * - workers wait: `maxRetriesPerRequest: null` lets blocking commands ride out a restart.
 */
export function createProducerConnection(target: RedisTarget | string, options: RedisOptions = {}): RedisClient {
  return connect(target, {
    ...namedAs(target, 'producer'),
    enableOfflineQueue: false,
    // 0: the first drop fails the commands in flight (ioredis flushes them before it keeps them for a resend).
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
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

/**
 * An API process's one pub/sub connection for live updates (shared/live/changes.ts). It waits
 * for Redis like a worker's (the subscription is sent once Redis answers, and again after each
 * reconnect), because nothing a client asked for is pending on it.
 */
export function createSubscriberConnection(target: RedisTarget | string, options: RedisOptions = {}): RedisClient {
  return connect(target, {
    ...namedAs(target, 'subscriber'),
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

/**
 * Waits for the connection's first outcome: undefined once it is ready, or its first error (a
 * timeout counts as one). For a service that starts without Redis and lets the client keep
 * reconnecting in the background.
 */
export async function firstConnectionError(redis: RedisClient, timeoutMs = 5_000): Promise<Error | undefined> {
  if (redis.status === 'ready') return undefined;
  return new Promise<Error | undefined>((resolve) => {
    const settle = (error: Error | undefined) => {
      clearTimeout(timer);
      redis.off('ready', onReady);
      redis.off('error', onError);
      redis.off('node error', onError);
      resolve(error);
    };
    const onReady = () => settle(undefined);
    const onError = (error: Error) => settle(error);
    const timer = setTimeout(() => settle(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    redis.on('ready', onReady);
    redis.on('error', onError);
    redis.on('node error', onError);
  });
}

/** Where Redis is expected, without credentials: safe to log. */
export function describeRedisTarget(target: RedisTarget): string {
  if (target.clusterNodes) return `the Redis Cluster at ${target.clusterNodes} (REDIS_CLUSTER_NODES)`;
  const url = new URL(target.url);
  return `${url.hostname}:${url.port || 6379} (REDIS_URL)`;
}

/** The ways to get a local Redis configured as the services need it (AOF, noeviction). */
export const HOW_TO_START_REDIS = [
  'docker compose up -d redis',
  'the OS package: sudo apt install redis-server (Debian/Ubuntu) or brew install redis && brew services start redis (macOS)',
  'a container: docker run -d --name ticket-rush-redis -p 6379:6379 redis:7 redis-server --appendonly yes --maxmemory-policy noeviction',
];

/**
 * Logs each outage once, when it starts, rather than every reconnect attempt (every 2 s, for
 * as long as Redis is down), and says when the connection is back.
 */
export function logOutages(
  redis: RedisClient,
  logger: { warn: (obj: object, msg: string) => void; info: (msg: string) => void },
  options: { down?: boolean } = {},
): void {
  let down = options.down ?? false;
  redis.on('error', (error: Error) => {
    if (down) return;
    down = true;
    logger.warn({ err: error.message }, 'redis connection error; retrying in the background');
  });
  redis.on('ready', () => {
    if (!down) return;
    down = false;
    logger.info('redis connection back');
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

/** A Lua script defined as a command: its keys first (numberOfKeys, then keys, then arguments). */
export type ScriptCommand = (numberOfKeys: number, ...keysAndArgs: Array<string | number>) => Promise<unknown>;

/**
 * Defines each script as a command on the connection, once (ioredis defineCommand: EVALSHA,
 * falling back to EVAL when Redis does not know the script yet; on a Cluster too), and returns
 * the connection typed with them. Names must not clash with Redis commands or other scripts.
 */
export function defineScripts<Name extends string>(redis: RedisClient, scripts: Record<Name, string>): Record<Name, ScriptCommand> {
  const commands = redis as unknown as Partial<Record<Name, ScriptCommand>>;
  for (const [name, lua] of Object.entries(scripts) as Array<[Name, string]>) {
    if (typeof commands[name] !== 'function') redis.defineCommand(name, { lua });
  }
  return redis as unknown as Record<Name, ScriptCommand>;
}
