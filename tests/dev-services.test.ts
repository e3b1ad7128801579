import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { closedToOthers } from '../services/dev-services.js';
import { TEST_ADMIN_TOKEN } from './support/context.js';
import { freePort } from './support/processes.js';
import { waitFor } from './support/wait.js';

/**
 * `npm start` on a machine with nothing installed: DATABASE_URL and REDIS_URL unset, nothing on
 * the local ports (here free ports instead of 5432/6379, so the machine's own servers are left
 * alone), and it starts an embedded Postgres and a redis-server with their data under
 * DEV_DATA_DIR, serves bookings, and stops both on SIGTERM. Without redis-server it says how
 * to get one and exits non-zero.
 */

const ROOT = resolve(import.meta.dirname, '..');
const children: ChildProcess[] = [];
const dirs: string[] = [];

afterAll(async () => {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      await exited;
    }
  }
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function npmStart(env: Record<string, string>): { child: ChildProcess; output: () => string } {
  const child = spawn(process.execPath, ['--import', 'tsx', 'services/start.ts'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  return { child, output: () => output };
}

function answers(port: number): Promise<boolean> {
  return new Promise((done) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      done(true);
    });
    socket.once('error', () => done(false));
  });
}

function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  // As root, the embedded Postgres runs as the user postgres, which must reach its data directory.
  chmodSync(dir, 0o755);
  dirs.push(dir);
  return dir;
}

describe('npm start with nothing installed', () => {
  it(
    'starts an embedded Postgres and a redis-server, serves a booking, and stops them on SIGTERM',
    async () => {
      const [postgresPort, redisPort, apiPort] = [await freePort(), await freePort(), await freePort()];
      const data = tempDir('ticket-rush-dev-');
      const { child, output } = npmStart({
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? tmpdir(),
        NODE_ENV: 'development',
        DEV_POSTGRES_PORT: String(postgresPort),
        DEV_REDIS_PORT: String(redisPort),
        DEV_DATA_DIR: data,
        PORT: String(apiPort),
        ADMIN_TOKEN: TEST_ADMIN_TOKEN,
        WORKER_METRICS_PORT: '0',
        LOG_LEVEL: 'info',
      });
      // As root from a checkout the user postgres cannot reach (a mktemp -d clone), the embedded
      // Postgres cannot start at all: then npm start must say so, naming the folder.
      const closed = process.getuid?.() === 0 ? closedToOthers(ROOT) : null;
      if (closed) {
        const [code] = (await once(child, 'exit')) as [number | null];
        expect(code).not.toBe(0);
        expect(output()).toContain(`who cannot enter ${closed}`);
        return;
      }
      const base = `http://127.0.0.1:${apiPort}`;
      await waitFor(
        async () => {
          if (child.exitCode !== null) throw new Error(`npm start exited with ${child.exitCode}:\n${output()}`);
          return (await fetch(`${base}/ready`).then((r) => r.status, () => 0)) === 200 ? true : undefined;
        },
        '/ready to answer 200',
        150_000,
      ).catch((error: Error) => {
        throw new Error(`${error.message}\n${output()}`);
      });
      expect(output()).toContain('no Postgres answers: creating an embedded one');
      expect(output()).toContain('no Redis answers: starting redis-server');

      const show = await fetch(`${base}/admin/shows`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${TEST_ADMIN_TOKEN}` },
        body: JSON.stringify({ name: 'First show', start_time: '2030-01-01T20:00:00Z', total_seats: 10 }),
      });
      expect(show.status).toBe(201);
      const { id: showId } = (await show.json()) as { id: string };
      const booking = await fetch(`${base}/booking`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ show_id: showId, customer_email: 'first@example.test', seat_count: 2 }),
      });
      expect(booking.status).toBe(202);
      const { id } = (await booking.json()) as { id: string };
      const decided = await waitFor(
        async () => {
          const status = (await (await fetch(`${base}/booking/${id}/status`)).json()) as { status: string };
          return status.status === 'QUEUED' ? undefined : status;
        },
        'the booking to be decided',
        30_000,
      );
      expect(decided.status).toBe('HELD');

      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      const [code] = (await exited) as [number | null];
      expect(code, output()).toBe(0);
      expect(await answers(postgresPort)).toBe(false);
      expect(await answers(redisPort)).toBe(false);
    },
    240_000,
  );

  it('finds the folder on the way to a checkout that the embedded Postgres user could not enter', () => {
    // As root, the embedded Postgres runs as the user postgres from node_modules: a folder above
    // the checkout that others cannot enter would fail its spawn with EACCES.
    const outer = tempDir('ticket-rush-closed-');
    const checkout = join(outer, 'a', 'checkout');
    mkdirSync(checkout, { recursive: true });
    chmodSync(outer, 0o755);
    expect(closedToOthers(checkout)).toBeNull();
    chmodSync(join(outer, 'a'), 0o700);
    expect(closedToOthers(checkout)).toBe(join(outer, 'a'));
    chmodSync(join(outer, 'a'), 0o711);
    expect(closedToOthers(checkout)).toBeNull();
  });

  it('without redis-server on PATH, names the three ways to get Redis and exits non-zero', async () => {
    const redisPort = await freePort();
    const { child, output } = npmStart({
      PATH: tempDir('ticket-rush-empty-path-'),
      HOME: process.env.HOME ?? tmpdir(),
      NODE_ENV: 'development',
      // A Postgres named explicitly is used as it is; only Redis is missing here.
      DATABASE_URL: 'postgres://postgres@127.0.0.1:1/nothing',
      DEV_REDIS_PORT: String(redisPort),
      DEV_DATA_DIR: tempDir('ticket-rush-dev-'),
      LOG_LEVEL: 'warn',
    });
    const [code] = (await once(child, 'exit')) as [number | null];
    expect(code).not.toBe(0);
    const text = output();
    expect(text).toContain(`No Redis answers on 127.0.0.1:${redisPort} and redis-server is not on PATH`);
    expect(text).toContain('docker compose up -d redis');
    expect(text).toMatch(/apt install redis-server/);
    expect(text).toMatch(/docker run .*redis:7 .*--appendonly yes/);
  });
});
