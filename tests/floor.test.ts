import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { expect, inject, it } from 'vitest';

/**
 * `npm run bench:floor` end to end at a tiny size: every stripped-down server answers every
 * request 202 (the tool fails otherwise), and the table has a cold and a warm row for each,
 * with a positive rate. Its figures are for bench/RESULTS.md, not asserted here.
 */

it('bench:floor measures every server, cold and warm', async () => {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ['--import', 'tsx', 'bench/floor.ts', '--requests', '300', '--in-flight', '20', '--redis-url', inject('redisUrl')],
    { timeout: 60_000 },
  );
  const rows = stdout.split('\n').filter((line) => /^\| (fastify|redis|bullmq|bullmq-batch) \|/.test(line));
  expect(rows.map((row) => row.split('|').slice(1, 3).map((cell) => cell.trim()).join(' '))).toEqual([
    'fastify cold',
    'fastify warm',
    'redis cold',
    'redis warm',
    'bullmq cold',
    'bullmq warm',
    'bullmq-batch cold',
    'bullmq-batch warm',
  ]);
  for (const row of rows) expect(Number(row.split('|')[3]!.trim().replace(/,/g, ''))).toBeGreaterThan(0);
}, 90_000);
