import type { TestProject } from 'vitest/node';
import pg from 'pg';
import { Redis } from 'ioredis';
import { runMigrations } from '../../shared/db/migrate.js';
import { buildWebPage } from '../../web/build.js';

/**
 * Once per test run: find Postgres and Redis (the ones named by TEST_DATABASE_URL /
 * TEST_REDIS_URL, else the local defaults; containers via testcontainers only when neither is
 * reachable and Docker is), build a migrated template database that each test file clones,
 * and build the web page the API serves (tests/web drive it in Chromium).
 */

declare module 'vitest' {
  export interface ProvidedContext {
    postgresUrl: string;
    redisUrl: string;
    templateDatabase: string;
  }
}

// One template per run: several runs at once (developers, CI) must not rebuild each other's.
const TEMPLATE = `ticket_rush_tpl_${process.pid}_${Date.now().toString(36)}`;

async function reachablePostgres(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2_000 });
  try {
    await client.connect();
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => {});
  }
}

async function reachableRedis(url: string): Promise<boolean> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, connectTimeout: 2_000, retryStrategy: () => null });
  try {
    await redis.connect();
    await redis.ping();
    return true;
  } catch {
    return false;
  } finally {
    redis.disconnect();
  }
}

export default async function setup(project: TestProject) {
  const stops: Array<() => Promise<unknown>> = [];
  let postgresUrl = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  let redisUrl = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

  if (!(await reachablePostgres(postgresUrl))) {
    const { PostgreSqlContainer } = await import('@testcontainers/postgresql');
    const container = await new PostgreSqlContainer('postgres:15-alpine').withUsername('postgres').withPassword('postgres').start();
    stops.push(() => container.stop());
    postgresUrl = container.getConnectionUri().replace(/\/[^/]*$/, '/postgres');
  }
  if (!(await reachableRedis(redisUrl))) {
    const { RedisContainer } = await import('@testcontainers/redis');
    const container = await new RedisContainer('redis:7-alpine').withCommand(['redis-server', '--maxmemory-policy', 'noeviction']).start();
    stops.push(() => container.stop());
    redisUrl = container.getConnectionUrl();
  }

  const admin = new pg.Client({ connectionString: postgresUrl });
  await admin.connect();
  // Templates left behind by runs that were killed before their teardown.
  const stale = await admin.query<{ datname: string }>(
    `SELECT datname FROM pg_database WHERE datname = 'ticket_rush_test_template'
        OR (datname LIKE 'ticket_rush_tpl_%' AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.datname = pg_database.datname)
            AND (pg_stat_file('base/' || oid || '/PG_VERSION')).modification < now() - interval '2 hours')`,
  ).catch(() => ({ rows: [] as { datname: string }[] }));
  for (const { datname } of stale.rows) await admin.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(datname)} WITH (FORCE)`).catch(() => {});
  await admin.end();
  const templateUrl = new URL(postgresUrl);
  templateUrl.pathname = `/${TEMPLATE}`;
  await runMigrations(templateUrl.toString());
  await buildWebPage();

  project.provide('postgresUrl', postgresUrl);
  project.provide('redisUrl', redisUrl);
  project.provide('templateDatabase', TEMPLATE);

  return async () => {
    const dropper = new pg.Client({ connectionString: postgresUrl });
    await dropper.connect();
    await dropper.query(`DROP DATABASE IF EXISTS ${TEMPLATE} WITH (FORCE)`);
    await dropper.end();
    for (const stop of stops) await stop();
  };
}
