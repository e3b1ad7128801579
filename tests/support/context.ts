import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { Redis } from 'ioredis';
import { inject } from 'vitest';
import { loadConfig, type Config } from '../../shared/config.js';
import { createDb, type DbHandle } from '../../shared/db/client.js';
import { createLogger } from '../../shared/logger.js';
import { startApi, type RunningApi } from '../../services/api/server.js';
import { deleteKeysMatching } from '../../shared/redis.js';
import { startWorker, type RunningWorker } from '../../services/worker/worker.js';

/**
 * A test file's own world: a database cloned from the migrated template, a queue prefix no
 * other file uses, and helpers to run the real API and workers against them. `cleanup()`
 * closes everything it started and drops the database and the Redis keys.
 */
export type TestContext = {
  config: Config;
  db: DbHandle['db'];
  pool: pg.Pool;
  redis: Redis;
  databaseUrl: string;
  /** Starts the API (not listening; use `api.app.inject`). */
  startApi: (overrides?: Record<string, string>) => Promise<RunningApi>;
  startWorker: (overrides?: Record<string, string>) => Promise<RunningWorker>;
  /** A fresh config with overrides, same database and prefix. */
  configWith: (overrides?: Record<string, string>) => Config;
  cleanup: () => Promise<void>;
};

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
    ...overrides,
  };
  const configWith = (more: Record<string, string> = {}) => loadConfig({ ...baseEnv, ...more });
  const config = configWith();
  const { db, pool } = createDb({ connectionString: databaseUrl, max: 5, applicationName: 'ticket-rush-test' });
  const redis = new Redis(config.REDIS_URL, { maxRetriesPerRequest: null });

  const running: Array<{ close: () => Promise<void> }> = [];
  const logger = createLogger(config, 'test');

  return {
    config,
    db,
    pool,
    redis,
    databaseUrl,
    configWith,
    startApi: async (more) => {
      const api = await startApi(configWith(more), logger, { listen: false });
      running.push(api);
      return api;
    },
    startWorker: async (more) => {
      const worker = await startWorker(configWith(more), logger);
      running.push(worker);
      return worker;
    },
    cleanup: async () => {
      for (const thing of running.reverse()) await thing.close();
      await pool.end();
      await deleteKeysMatching(redis, `${config.QUEUE_PREFIX}:*`);
      redis.disconnect();
      const dropper = new pg.Client({ connectionString: adminUrl });
      await dropper.connect();
      await dropper.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
      await dropper.end();
    },
  };
}

