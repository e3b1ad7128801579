import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { Redis } from 'ioredis';
import type { Queue } from 'bullmq';
import { afterAll, inject } from 'vitest';
import { loadConfig, type Config } from '../../shared/config.js';
import { createDb, type DbHandle } from '../../shared/db/client.js';
import { createLogger } from '../../shared/logger.js';
import { startApi, type RunningApi } from '../../services/api/server.js';
import { QUEUES } from '../../shared/queue/catalog.js';
import { openQueue } from '../../shared/queue/queues.js';
import { RequestIndex } from '../../shared/queue/request-index.js';
import { deleteKeysMatching } from '../../shared/redis.js';
import { startWorker, type RunningWorker } from '../../services/worker/worker.js';
import { ProcessRegistry, serviceEnv } from './processes.js';
import { waitFor } from './wait.js';

/**
 * A test file's own world: a database cloned from the migrated template, a queue prefix no
 * other file uses, and helpers to run the real API and workers against them. `cleanup()`
 * closes everything it started and drops the database and the Redis keys.
 *
 * `cleanup()` fails when the test leaked: a client of `pool` still checked out, any other
 * connection to the file's database still open, or a Redis connection named for this file's
 * queue prefix still open (the services name theirs `<QUEUE_PREFIX>:<role>`, BullMQ its own
 * `<QUEUE_PREFIX>:<queue>...`: shared/redis.ts connectionName). It then leaves the database
 * and keys in place, so a test that closes what it leaked can call it again.
 */
export type TestContext = {
  config: Config;
  db: DbHandle['db'];
  pool: pg.Pool;
  redis: Redis;
  databaseUrl: string;
  /** Starts the API (not listening unless asked; use `api.app.inject`). */
  startApi: (overrides?: Record<string, string>, options?: { listen?: boolean }) => Promise<RunningApi>;
  startWorker: (overrides?: Record<string, string>) => Promise<RunningWorker>;
  /** A fresh config with overrides, same database and prefix. */
  configWith: (overrides?: Record<string, string>) => Config;
  cleanup: () => Promise<void>;
};

/** Connections close asynchronously (a pool's end, a QUIT): how long they get before they count as leaked. */
const LEAK_GRACE_MS = 5_000;

/** Waits for `open()` to list nothing; fails naming what stayed open. */
async function nothingLeft(what: string, open: () => Promise<string[]>): Promise<void> {
  await waitFor(async () => ((await open()).length === 0 ? true : undefined), `no ${what}`, LEAK_GRACE_MS).catch(async (error: unknown) => {
    const left = await open().catch(() => null);
    if (!left) throw error;
    throw new Error(`${left.length} ${what} still open after the test: ${left.join('; ')}`);
  });
}

export const TEST_ADMIN_TOKEN = 'test-admin-token-0123456789';

export async function createTestContext(overrides: Record<string, string> = {}): Promise<TestContext> {
  const suffix = randomBytes(6).toString('hex');
  const database = `ticket_rush_t_${suffix}`;
  const adminUrl = inject('postgresUrl');
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${database} TEMPLATE ${inject('templateDatabase')}`);
  await admin.end();

  const url = new URL(adminUrl);
  url.pathname = `/${database}`;
  const databaseUrl = url.toString();
  const baseEnv: Record<string, string> = {
    NODE_ENV: 'test',
    DATABASE_URL: databaseUrl,
    REDIS_URL: inject('redisUrl'),
    QUEUE_PREFIX: `test-${suffix}`,
    ADMIN_TOKEN: TEST_ADMIN_TOKEN,
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    RATE_LIMIT_PER_MINUTE: '0',
    // Several workers run per test file and several files at once: no fixed metrics port.
    WORKER_METRICS_PORT: '0',
    // Test files share two busy cores: a module load that stalls a fork's event loop for a
    // second would make the overload guard shed unrelated requests. tests/overload.test.ts
    // turns it on.
    MAX_EVENT_LOOP_DELAY_MS: '0',
    // An API's warm-up sends it thousands of requests before it is ready: seconds per start on
    // these shared cores, for every API a test starts. tests/warm-up.test.ts turns it on.
    API_WARMUP_REQUESTS: '0',
    ...overrides,
  };
  const configWith = (more: Record<string, string> = {}) => loadConfig({ ...baseEnv, ...more });
  const config = configWith();
  const { db, pool } = createDb({ connectionString: databaseUrl, max: 5, applicationName: 'ticket-rush-test' });
  const redis = new Redis(config.REDIS_URL, { maxRetriesPerRequest: null });

  const running: Array<{ close: () => Promise<void> }> = [];
  let poolEnded = false;
  const logger = createLogger(config, 'test');

  return {
    config,
    db,
    pool,
    redis,
    databaseUrl,
    configWith,
    startApi: async (more, options) => {
      const api = await startApi(configWith(more), logger, { listen: options?.listen ?? false });
      running.push(api);
      return api;
    },
    startWorker: async (more) => {
      const worker = await startWorker(configWith(more), logger);
      running.push(worker);
      return worker;
    },
    cleanup: async () => {
      while (running.length > 0) await running.pop()!.close();
      const checkedOut = pool.totalCount - pool.idleCount;
      if (checkedOut > 0) {
        throw new Error(`leak: ${checkedOut} client(s) of the test context's pool still checked out (release() each pool.connect())`);
      }
      if (!poolEnded) {
        poolEnded = true;
        await pool.end();
      }
      const checks = await Promise.allSettled([
        nothingLeft(`connection(s) to database ${database}`, async () => {
          const client = new pg.Client({ connectionString: adminUrl });
          await client.connect();
          try {
            const open = await client.query<{ pid: number; application_name: string; state: string | null }>(
              `SELECT pid, application_name, state FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`,
              [database],
            );
            return open.rows.map((row) => `pid ${row.pid} "${row.application_name}" (${row.state ?? 'starting'})`);
          } finally {
            await client.end();
          }
        }),
        nothingLeft(`Redis connection(s) named for queue prefix ${config.QUEUE_PREFIX}`, async () => {
          const list = (await redis.client('LIST')) as string;
          return list
            .split('\n')
            .map((line) => Object.fromEntries(line.trim().split(' ').map((field) => [field.slice(0, field.indexOf('=')), field.slice(field.indexOf('=') + 1)])))
            .filter(({ name }) => name === config.QUEUE_PREFIX || name?.startsWith(`${config.QUEUE_PREFIX}:`))
            .map(({ id, name, cmd, age }) => `id ${id} "${name}" (last ${cmd}, ${age} s old)`);
        }),
      ]);
      const leaks = checks.flatMap((check) => (check.status === 'rejected' ? [(check.reason as Error).message] : []));
      if (leaks.length > 0) throw new Error(`leak:\n  ${leaks.join('\n  ')}`);
      await deleteKeysMatching(redis, `${config.QUEUE_PREFIX}:*`);
      redis.disconnect();
      const dropper = new pg.Client({ connectionString: adminUrl });
      await dropper.connect();
      await dropper.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
      await dropper.end();
    },
  };
}

/**
 * A context of the file's own, cleaned up when the file ends (the hook is registered here, so a
 * leak still fails the file). For files that work on the database and Redis without the API.
 * Called at the top of the file: `const ctx = await openTestContext();`. Hooks a file registers
 * afterwards run before this cleanup (vitest runs after-hooks last-registered first).
 */
export async function openTestContext(overrides: Record<string, string> = {}): Promise<TestContext> {
  const ctx = await createTestContext(overrides);
  afterAll(() => ctx.cleanup());
  return ctx;
}

/**
 * How most test files start: a context of their own and the API on it (not listening; use
 * `api.app.inject`), cleaned up when the file ends (the hook is registered here, so a leak still
 * fails the file). Called at the top of the file: `const { ctx, api } = await openTestApi();`.
 */
export async function openTestApi(overrides: Record<string, string> = {}, apiOverrides: Record<string, string> = {}): Promise<{ ctx: TestContext; api: RunningApi }> {
  const ctx = await openTestContext(overrides);
  const api = await ctx.startApi(apiOverrides);
  return { ctx, api };
}

/**
 * openTestApi with the bookings queue and its request index opened beside the API, as the tests
 * of intake read them; the queue is closed before the context's leak check.
 */
export async function openIntakeTest(
  overrides: Record<string, string> = {},
  apiOverrides: Record<string, string> = {},
): Promise<{ ctx: TestContext; api: RunningApi; queue: Queue; index: RequestIndex }> {
  const { ctx, api } = await openTestApi(overrides, apiOverrides);
  const queue = openQueue(QUEUES.bookings, ctx.redis, ctx.config.QUEUE_PREFIX);
  // Hooks after a file's run last-registered first: the queue closes, then the context.
  afterAll(() => queue.close());
  return { ctx, api, queue, index: new RequestIndex(ctx.redis, queue) };
}

/**
 * openTestApi with the API listening on a free port (PORT 0, on HOST: 127.0.0.1 unless
 * overridden), for tests that need a real socket (a browser, an SSE client, raw TCP, the burst
 * tool); `baseUrl` is the API's `url`, `http://127.0.0.1:<port>`.
 */
export async function openListeningTestApi(
  overrides: Record<string, string> = {},
  apiOverrides: Record<string, string> = {},
): Promise<{ ctx: TestContext; api: RunningApi; baseUrl: string }> {
  const ctx = await openTestContext(overrides);
  const api = await ctx.startApi({ PORT: '0', ...apiOverrides }, { listen: true });
  return { ctx, api, baseUrl: api.url };
}

/**
 * A registry for the file's service processes (API and workers as OS processes), their
 * environment the context's config with `overrides`; every process it started is stopped when
 * the file ends. Open it after the context: its hook then runs first, before the leak check.
 */
export function openTestProcesses(ctx: TestContext, overrides: Record<string, string> = {}): ProcessRegistry {
  const processes = new ProcessRegistry(serviceEnv(ctx.config, overrides));
  afterAll(() => processes.stopAll());
  return processes;
}
