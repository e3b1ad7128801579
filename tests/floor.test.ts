import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, expect, inject, it } from 'vitest';

/**
 * `npm run bench:floor` end to end at a tiny size: every stripped-down server and the real API
 * answer every request 202 (the tool fails otherwise), and the table has a cold and a warm row
 * for each, with a positive rate, then the API's share of the batched floor. Its figures are
 * for bench/RESULTS.md, not asserted here. The API's database is this file's own.
 */

const databaseUrl = new URL(inject('postgresUrl'));
const database = `ticket_rush_t_floor_${randomBytes(4).toString('hex')}`;
databaseUrl.pathname = `/${database}`;

afterAll(async () => {
  const admin = new pg.Client({ connectionString: inject('postgresUrl') });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
  } finally {
    await admin.end();
  }
});

it('bench:floor measures every server and the real API, cold and warm', async () => {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ['--import', 'tsx', 'bench/floor.ts', '--requests', '300', '--in-flight', '20', '--redis-url', inject('redisUrl'), '--database-url', databaseUrl.toString()],
    { timeout: 120_000 },
  );
  const rows = stdout.split('\n').filter((line) => /^\| 1 \| (fastify|redis|bullmq|bullmq-batch|api) \|/.test(line));
  expect(rows.map((row) => row.split('|').slice(2, 4).map((cell) => cell.trim()).join(' '))).toEqual([
    'fastify cold',
    'fastify warm',
    'redis cold',
    'redis warm',
    'bullmq cold',
    'bullmq warm',
    'bullmq-batch cold',
    'bullmq-batch warm',
    'api cold',
    'api warm',
  ]);
  for (const row of rows) expect(Number(row.split('|')[4]!.trim().replace(/,/g, ''))).toBeGreaterThan(0);
  expect(stdout).toMatch(/The real API cold: \d+\.\d\d of bullmq-batch's accepted\/s/);
  expect(stdout).toMatch(/The real API warm: \d+\.\d\d of bullmq-batch's accepted\/s/);
}, 150_000);

it("bench:floor --repeat: each run's rows, then the API's share as the median of the runs", async () => {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    [
      '--import',
      'tsx',
      'bench/floor.ts',
      ...['--modes', 'bullmq-batch,api', '--repeat', '2', '--requests', '200', '--in-flight', '10'],
      ...['--redis-url', inject('redisUrl'), '--database-url', databaseUrl.toString()],
    ],
    { timeout: 120_000 },
  );
  const runs = stdout.split('\n').flatMap((line) => /^\| (\d) \| (bullmq-batch|api) \| (cold|warm) \|/.exec(line)?.slice(1, 4).join(' ') ?? []);
  expect(runs).toEqual(['1 bullmq-batch cold', '1 bullmq-batch warm', '1 api cold', '1 api warm', '2 bullmq-batch cold', '2 bullmq-batch warm', '2 api cold', '2 api warm']);
  expect(stdout).toMatch(/The real API cold: \d+\.\d\d of bullmq-batch's accepted\/s \(median of 2 runs: \d+\.\d\d · \d+\.\d\d; range/);
  expect(stdout).toMatch(/The real API warm: \d+\.\d\d of bullmq-batch's accepted\/s \(median of 2 runs/);
}, 150_000);
