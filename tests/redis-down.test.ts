import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type RunningApi } from '../services/api/server.js';
import { Queue } from 'bullmq';
import { createLogger } from '../shared/logger.js';
import { QUEUES } from '../shared/queue/catalog.js';
import { RequestIndex } from '../shared/queue/request-index.js';
import { ownRequests } from './support/batches.js';
import { createTestContext, type TestContext } from './support/context.js';
import { freePort, ProcessRegistry, RedisServer } from './support/processes.js';
import { waitFor } from './support/wait.js';
import { call, createShow, type Reply } from './support/http.js';

/**
 * The API against a Redis of its own that the test kills and restarts: while Redis is down a
 * booking is refused at once with 503 + Retry-After (never 202 for a request that was not
 * enqueued, never a 500), /ready says so, and once Redis is back the API recovers by itself.
 * Also: no process starts on a Redis that may evict keys, and an API started while Redis is
 * down listens all the same and recovers once Redis comes up.
 */

let ctx: TestContext;
let api: RunningApi;
let redisUrl: string;
let port: number;
let redisProcess: ChildProcess | undefined;
let showId: string;

async function redisAnswers(): Promise<boolean> {
  const probe = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 500 });
  probe.on('error', () => {});
  try {
    await probe.connect();
    return (await probe.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    probe.disconnect();
  }
}

async function startRedis(): Promise<void> {
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--maxmemory-policy', 'noeviction', '--dir', tmpdir()],
    { stdio: 'ignore' },
  );
  redisProcess = child;
  child.once('exit', () => {
    if (redisProcess === child) redisProcess = undefined;
  });
  await waitFor(async () => ((await redisAnswers()) ? true : undefined), 'redis-server to answer', 15_000);
}

async function killRedis(): Promise<void> {
  const child = redisProcess;
  if (!child) return;
  const exited = once(child, 'exit');
  child.kill('SIGKILL');
  await exited;
}

/** Named, so counts of the services' connections can leave out the test's own (closed asynchronously). */
const TEST_CONNECTION = 'redis-down-test';

async function withOwnRedis<T>(fn: (redis: Redis) => Promise<T>): Promise<T> {
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: 1, connectionName: TEST_CONNECTION });
  try {
    return await fn(redis);
  } finally {
    redis.disconnect();
  }
}

const booking = () => ({ show_id: showId, customer_email: 'ada@example.com', seat_count: 1 });

/** A 503 as the contract wants it: Retry-After and a JSON error with nothing internal in it. */
function expectUnavailable(reply: Reply) {
  const shown = `${reply.status} ${JSON.stringify(reply.body)}`;
  expect(reply.status, shown).toBe(503);
  expect(Number(reply.headers['retry-after']), shown).toBeGreaterThanOrEqual(1);
  expect(String(reply.headers['content-type'])).toMatch(/^application\/json/);
  expect(reply.body, shown).toEqual({ error: { code: expect.stringMatching(/^[A-Z_]+$/), message: expect.any(String) } });
  expect(reply.body.error.message, shown).not.toMatch(/ECONN|127\.0\.0\.1|ioredis|offline queue|stack|at .+:\d+/i);
}

beforeAll(async () => {
  port = await freePort();
  redisUrl = `redis://127.0.0.1:${port}`;
  await startRedis();
  ctx = await createTestContext({ REDIS_URL: redisUrl });
  // The context's own client points at this Redis too: its outage is expected here.
  ctx.redis.on('error', () => {});
  api = await ctx.startApi();
  showId = (await createShow(api.app, { total_seats: 100 })).id;
});
afterAll(async () => {
  // Close the API while its Redis is up, then stop that Redis.
  if (redisProcess === undefined && port) await startRedis().catch(() => {});
  await ctx?.cleanup();
  await killRedis();
});

describe('Redis goes down under the API', () => {
  it('accepts bookings while Redis is up', async () => {
    expect((await call(api.app, 'POST', '/booking', { body: booking() })).status).toBe(202);
    expect((await call(api.app, 'GET', '/ready')).status).toBe(200);
  });

  it('refuses bookings at once with 503 + Retry-After while Redis is down', async () => {
    await killRedis();
    // Straight after the kill, sequentially and concurrently, with and without a key. Redis
    // stays down until a later test starts it again, so an API that held requests waiting for
    // Redis (an offline queue) would never answer here: answering at all is failing fast.
    const replies = [await call(api.app, 'POST', '/booking', { body: booking() })];
    replies.push(await call(api.app, 'POST', '/booking', { body: booking(), headers: { 'idempotency-key': 'during-outage' } }));
    replies.push(...(await Promise.all(Array.from({ length: 10 }, () => call(api.app, 'POST', '/booking', { body: booking() })))));
    for (const reply of replies) expectUnavailable(reply);
    expect(await redisAnswers()).toBe(false);
  });

  it('answers polls with 503, not 500, and /ready with 503 naming Redis', async () => {
    const poll = await call(api.app, 'GET', '/booking/00000000-0000-4000-8000-000000000000/status');
    expectUnavailable(poll);
    const ready = await call(api.app, 'GET', '/ready');
    expect(ready.status).toBe(503);
    expect(Number(ready.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(ready.body).toEqual({ status: 'not_ready', checks: { postgres: 'up', redis: 'down', warm_up: 'done' } });
    // Alive all the same: the process itself is fine.
    expect((await call(api.app, 'GET', '/health')).status).toBe(200);
    // Routes that need only Postgres keep working.
    expect((await call(api.app, 'GET', `/shows/${showId}`)).status).toBe(200);
  });

  it('recovers by itself once Redis is back on the same port', async () => {
    await startRedis();
    const accepted = await waitFor(
      async () => {
        const reply = await call(api.app, 'POST', '/booking', { body: booking() });
        if (reply.status === 202) return reply;
        expectUnavailable(reply);
        return undefined;
      },
      'the API to accept bookings again',
      15_000,
    );
    // The 202's position is an estimate (a sampled depth); the status poll is exact.
    expect(accepted.body).toMatchObject({ status: 'QUEUED', position: expect.any(Number) });
    expect((await call(api.app, 'GET', '/ready')).status).toBe(200);
    expect((await call(api.app, 'GET', `/booking/${accepted.body.id}/status`)).body).toMatchObject({ status: 'QUEUED', position: 1 });

    // The key sent during the outage was not left pointing at a request that was never enqueued.
    const keyed = await call(api.app, 'POST', '/booking', { body: booking(), headers: { 'idempotency-key': 'during-outage' } });
    expect(keyed.status).toBe(202);
    expect(keyed.body.id).not.toBe(accepted.body.id);
    // The wait list holds batch jobs; the requests they hold as their own are exactly the two
    // accepted. (The restarted Redis did not know the admission script: the first batch sent
    // with its admission went as an empty job, and the batch was admitted again.)
    const waiting = await withOwnRedis(async (redis) => {
      const queue = new Queue(QUEUES.bookings, { connection: redis, prefix: ctx.config.QUEUE_PREFIX });
      const index = new RequestIndex(redis, queue);
      const jobIds = await redis.lrange(`${ctx.config.QUEUE_PREFIX}:bookings:wait`, 0, -1);
      const payloads = await Promise.all(jobIds.map((jobId) => redis.hget(`${ctx.config.QUEUE_PREFIX}:bookings:${jobId}`, 'data')));
      const own = await Promise.all(payloads.map((data, at) => ownRequests(redis, index, { id: jobIds[at]!, data: JSON.parse(data!) })));
      return own.flat().map((request) => request.id);
    });
    expect(waiting.sort()).toEqual([accepted.body.id, keyed.body.id].sort());
  });
});

describe('a Redis that may evict keys', () => {
  it('the API and the worker refuse to start, naming maxmemory-policy', async () => {
    // The services' connections by id: the running API's, and any a refused start leaked. The
    // test's own are left out, since one closed a moment ago may still be listed.
    const clients = () =>
      withOwnRedis(async (redis) =>
        String(await redis.client('LIST'))
          .trim()
          .split('\n')
          .filter((line) => !line.includes(`name=${TEST_CONNECTION} `)),
      );
    const idOf = (line: string) => /^id=(\d+) /.exec(line)?.[1];
    // The context's own client may still be waiting to reconnect after the outage above: once it
    // does, its new connection would look like one a refused start left open.
    await ctx.redis.ping();
    const before = new Set((await clients()).map(idOf));
    await withOwnRedis((redis) => redis.config('SET', 'maxmemory-policy', 'allkeys-lru'));
    try {
      await expect(ctx.startApi()).rejects.toThrow(/maxmemory-policy.*allkeys-lru.*noeviction/);
      await expect(ctx.startWorker()).rejects.toThrow(/maxmemory-policy.*allkeys-lru.*noeviction/);
      // A refused start closes what it opened: no connection newer than the snapshot remains.
      let opened: string[] = [];
      await waitFor(async () => {
        opened = (await clients()).filter((line) => !before.has(idOf(line)));
        return opened.length === 0 ? true : undefined;
      }, 'refused starts to close their Redis connections', 5_000).catch((error: Error) => {
        throw new Error(`${error.message}; still open:\n${opened.join('\n')}`);
      });
    } finally {
      await withOwnRedis((redis) => redis.config('SET', 'maxmemory-policy', 'noeviction'));
    }
    // Back on noeviction, both start.
    await ctx.startApi();
    await ctx.startWorker();
  });
});

describe('Redis down when the API starts', () => {
  const registry = new ProcessRegistry({});
  let lateApi: RunningApi | undefined;
  afterAll(async () => {
    await lateApi?.close();
    await registry.stopAll();
  });

  const fetchReply = async (url: string, init?: RequestInit): Promise<Reply> => {
    const response = await fetch(url, init);
    const text = await response.text();
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // not JSON: the assertion shows the text
    }
    return { status: response.status, body, headers: Object.fromEntries(response.headers) };
  };

  it('listens anyway (/health 200, /ready and bookings 503), says what is down and how to start it, and recovers once Redis is up', async () => {
    const redisPort = await freePort();
    const logs: Array<{ level: number; msg: string; [key: string]: unknown }> = [];
    const config = ctx.configWith({ REDIS_URL: `redis://127.0.0.1:${redisPort}`, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info' });
    const logger = createLogger(config, 'redis-down-test', { write: (line: string) => void logs.push(JSON.parse(line)) });
    lateApi = await startApi(config, logger);
    const base = lateApi.url;
    const bookingRequest = () => ({ method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(booking()) });

    expect((await fetchReply(`${base}/health`)).status).toBe(200);
    const ready = await fetchReply(`${base}/ready`);
    expect(ready.status).toBe(503);
    expect(ready.body).toEqual({ status: 'not_ready', checks: { postgres: 'up', redis: 'down', warm_up: 'done' } });
    expectUnavailable(await fetchReply(`${base}/booking`, bookingRequest()));

    const startup = logs.find((line) => /^Redis is down/.test(line.msg));
    expect(startup, JSON.stringify(logs)).toBeDefined();
    expect(startup!.msg).toContain(`127.0.0.1:${redisPort}`);
    expect(startup!.msg).toContain('docker compose up -d redis');
    expect(startup!.msg).toMatch(/apt install redis-server/);
    expect(startup!.msg).toMatch(/docker run .*redis:7/);

    await RedisServer.start(registry, { port: redisPort });
    await waitFor(async () => ((await fetchReply(`${base}/ready`)).status === 200 ? true : undefined), '/ready to answer 200', 15_000);
    const accepted = await fetchReply(`${base}/booking`, bookingRequest());
    expect(accepted.status).toBe(202);
    // The policy was checked once Redis came up, as it is at a normal start.
    await waitFor(async () => (logs.some((line) => /accepting bookings/.test(line.msg)) ? true : undefined), 'the policy check once Redis is up', 5_000);
    // One warning for the outage, not one per reconnect attempt.
    expect(logs.filter((line) => /redis connection error/.test(line.msg)).length).toBeLessThanOrEqual(1);
  });

  it('refuses a Redis that comes up with an evicting policy: bookings and /ready stay 503', async () => {
    const redisPort = await freePort();
    const logs: Array<{ level: number; msg: string; [key: string]: unknown }> = [];
    const config = ctx.configWith({ REDIS_URL: `redis://127.0.0.1:${redisPort}`, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info' });
    const logger = createLogger(config, 'redis-down-test', { write: (line: string) => void logs.push(JSON.parse(line)) });
    const evictingApi = await startApi(config, logger);
    try {
      await RedisServer.start(registry, { port: redisPort, args: ['--maxmemory-policy', 'allkeys-lru'] });
      await waitFor(async () => (logs.some((line) => /refusing this Redis/.test(line.msg)) ? true : undefined), 'the API to refuse the Redis', 15_000);
      const refusal = logs.find((line) => /refusing this Redis/.test(line.msg))!;
      expect(String(refusal.err)).toMatch(/maxmemory-policy.*allkeys-lru.*noeviction/);
      expect((await fetchReply(`${evictingApi.url}/ready`)).status).toBe(503);
      expectUnavailable(
        await fetchReply(`${evictingApi.url}/booking`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(booking()) }),
      );
    } finally {
      await evictingApi.close();
    }
  });
});
