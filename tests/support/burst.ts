import { parseBurstArgs, type BurstOptions } from '../../bench/lib/options.js';
import { TEST_ADMIN_TOKEN, type TestContext } from './context.js';

/**
 * The burst tool's options for a test file's own API, database and queue prefix (so its audit
 * reads the right database and its depth probe the right queue), quiet, with a fixed seed.
 */
export function burstOptions(apiUrl: string, ctx: TestContext, seed: number, ...extra: string[]): BurstOptions {
  const parsed = parseBurstArgs([
    '--url', apiUrl,
    '--admin-token', TEST_ADMIN_TOKEN,
    '--database-url', ctx.databaseUrl,
    '--redis-url', ctx.config.REDIS_URL,
    '--queue-prefix', ctx.config.QUEUE_PREFIX,
    '--no-progress',
    '--seed', String(seed),
    ...extra,
  ]);
  if (parsed === 'help') throw new Error('unexpected help');
  return parsed;
}
