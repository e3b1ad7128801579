import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { promisify } from 'node:util';
import type { Redis } from 'ioredis';
import type pg from 'pg';

/** The facts a benchmark figure means nothing without: the machine, the versions, the settings. */

export type MachineInfo = {
  cpu: string;
  cores: number;
  memoryGiB: number;
  os: string;
  loadAverageAtStart: number[];
  /** The code measured. */
  commit: string;
  node: string;
  postgres: string;
  redis: string;
  packages: Record<string, string>;
  postgresSettings: Record<string, string>;
  redisSettings: Record<string, string>;
};

const POSTGRES_SETTINGS = [
  'shared_buffers',
  'synchronous_commit',
  'fsync',
  'wal_level',
  'commit_delay',
  'max_connections',
  'max_wal_size',
  'work_mem',
  'effective_io_concurrency',
];

function packageVersion(name: string): string {
  try {
    return (JSON.parse(readFileSync(`node_modules/${name}/package.json`, 'utf8')) as { version: string }).version;
  } catch {
    return '?';
  }
}

export async function describeMachine(db: pg.Pool, redis: Redis): Promise<MachineInfo> {
  const version = (await db.query('SHOW server_version')).rows[0].server_version as string;
  const settings = await db.query('SELECT name, setting, unit FROM pg_settings WHERE name = ANY($1)', [POSTGRES_SETTINGS]);
  const postgresSettings: Record<string, string> = {};
  for (const name of POSTGRES_SETTINGS) {
    const row = settings.rows.find((r: { name: string }) => r.name === name);
    if (row) postgresSettings[name] = (await db.query(`SHOW ${name}`)).rows[0][name] as string;
  }
  const info = await redis.info('server');
  const redisSettings: Record<string, string> = {};
  for (const key of ['appendonly', 'appendfsync', 'maxmemory-policy', 'io-threads']) {
    try {
      const reply = (await redis.config('GET', key)) as string[];
      redisSettings[key] = reply[1] ?? '?';
    } catch {
      redisSettings[key] = '?';
    }
  }
  let commit = '?';
  try {
    const head = (await promisify(execFile)('git', ['rev-parse', '--short', 'HEAD'])).stdout.trim();
    const dirty = (await promisify(execFile)('git', ['status', '--porcelain', '--untracked-files=no', '--', 'services', 'shared'])).stdout.trim();
    commit = dirty ? `${head} + uncommitted changes in services/ or shared/` : head;
  } catch {
    // not a git checkout
  }
  let kernel = `${os.type()} ${os.release()}`;
  try {
    kernel = (await promisify(execFile)('uname', ['-srm'])).stdout.trim();
  } catch {
    // keep os.release()
  }
  return {
    cpu: os.cpus()[0]?.model ?? '?',
    cores: os.availableParallelism(),
    memoryGiB: Math.round((os.totalmem() / 1024 ** 3) * 10) / 10,
    os: kernel,
    loadAverageAtStart: os.loadavg().map((n) => Math.round(n * 100) / 100),
    commit,
    node: process.version,
    postgres: version,
    redis: /redis_version:(\S+)/.exec(info)?.[1] ?? '?',
    packages: Object.fromEntries(['fastify', 'bullmq', 'ioredis', 'pg', 'drizzle-orm', 'tsx'].map((name) => [name, packageVersion(name)])),
    postgresSettings,
    redisSettings,
  };
}
