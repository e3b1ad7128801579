import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Latency } from '../bench/lib/latency.js';
import { parseBurstArgs, type BurstOptions } from '../bench/lib/options.js';
import { formatReport } from '../bench/lib/report.js';
import { runBurst } from '../bench/lib/run-burst.js';
import { startApi, type RunningApi } from '../services/api/server.js';
import { createLogger } from '../shared/logger.js';
import { createTestContext, TEST_ADMIN_TOKEN, type TestContext } from './support/context.js';

/**
 * What the burst report says: percentiles that never exceed the maximum, a loud warning when
 * the API's per-client rate limit throttled the run, and holds that lapsed before any poll saw
 * them kept out of the decisions.
 */

describe('latency percentiles', () => {
  it('are ordered, never above the maximum, and within HDR precision of the exact value', () => {
    fc.assert(
      fc.property(fc.array(fc.double({ min: 0.001, max: 3_000_000, noNaN: true }), { minLength: 1, maxLength: 200 }), (values) => {
        const latency = new Latency();
        for (const value of values) latency.record(value);
        const summary = latency.summary();
        expect(summary.p50).toBeLessThanOrEqual(summary.p95);
        expect(summary.p95).toBeLessThanOrEqual(summary.p99);
        expect(summary.p99).toBeLessThanOrEqual(summary.max);
        // Nearest rank on the values as recorded (whole microseconds, at least 1).
        const sorted = values.map((value) => Math.max(1, Math.round(value * 1_000)) / 1_000).sort((a, b) => a - b);
        const exact = sorted[Math.max(0, Math.ceil(0.99 * sorted.length) - 1)]!;
        expect(summary.p99).toBeGreaterThanOrEqual(exact * 0.998 - 0.001);
        expect(summary.p99).toBeLessThanOrEqual(exact * 1.002 + 0.001);
      }),
      { numRuns: 100 },
    );
  });

  it('p99 of a single value is that value', () => {
    const latency = new Latency();
    latency.record(137_101);
    expect(latency.summary()).toMatchObject({ p50: 137_101, p99: 137_101, max: 137_101 });
  });
});

describe('burst report against a real API', () => {
  let ctx: TestContext;
  const apis: RunningApi[] = [];
  const listening = async (overrides: Record<string, string> = {}) => {
    const config = ctx.configWith({ PORT: '0', ...overrides });
    const api = await startApi(config, createLogger(config, 'burst-report-test'), { listen: true });
    apis.push(api);
    return api;
  };
  const options = (api: RunningApi, ...extra: string[]): BurstOptions => {
    const parsed = parseBurstArgs([
      '--url', api.url,
      '--admin-token', TEST_ADMIN_TOKEN,
      '--redis-url', ctx.config.REDIS_URL,
      '--queue-prefix', ctx.config.QUEUE_PREFIX,
      '--no-progress',
      '--no-audit',
      '--seed', '7',
      ...extra,
    ]);
    if (parsed === 'help') throw new Error('unexpected help');
    return parsed;
  };

  beforeAll(async () => {
    ctx = await createTestContext();
    // Holds lapse after a second and are swept every second, long before the first poll.
    await ctx.startWorker({ HOLD_SECONDS: '1', EXPIRY_INTERVAL_SECONDS: '1' });
  });
  afterAll(async () => {
    for (const api of apis) await api.close();
    await ctx?.cleanup();
  });

  it('warns prominently, with the 429 count, when the rate limit throttled the run', async () => {
    const api = await listening({ RATE_LIMIT_PER_MINUTE: '5' });
    const report = await runBurst(
      options(api, '--create-show', '--seats', '50', '--requests', '20', '--concurrency', '4', '--max-retries', '0', '--decision-timeout', '2'),
    );
    const submitted429 = report.http.submit?.['429'] ?? 0;
    expect(submitted429).toBeGreaterThanOrEqual(15);
    expect(report.rateLimited).toBeGreaterThanOrEqual(submitted429);
    const text = formatReport(report);
    const first = text.split('\n').find((line) => line.trim() !== '');
    expect(first).toMatch(/^!+$/);
    expect(text).toContain(`WARNING: the API rate-limited this run: ${report.rateLimited} answer(s) were 429`);
    expect(text).toContain('RATE_LIMIT_PER_MINUTE=0');
    expect(text).toMatch(/per client address/);
    expect(text).toContain(`429 (rate limited): ${report.rateLimited}`);
  });

  it('says nothing of rate limits when there were none', async () => {
    const api = await listening();
    const report = await runBurst(options(api, '--create-show', '--seats', '10', '--requests', '5', '--concurrency', '5'));
    expect(report.rateLimited).toBe(0);
    expect(formatReport(report)).not.toMatch(/WARNING/);
  });

  it('does not count a hold that lapsed before the first poll as a decision', async () => {
    const api = await listening();
    const report = await runBurst(
      options(api, '--create-show', '--seats', '10', '--requests', '5', '--concurrency', '5', '--poll-ms', '5000', '--confirm-ratio', '0', '--cancel-share', '0'),
    );
    expect(report.requests).toMatchObject({ accepted: 5, decided: 0, lapsedUnseen: 5, undecided: 0 });
    expect(report.timeToDecisionMs.observedByPolling.count).toBe(0);
    expect(report.outcomes).toEqual({});
  });
});
