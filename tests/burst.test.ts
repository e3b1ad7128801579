import { describe, expect, it } from 'vitest';
import { renderHtml } from '../bench/lib/html.js';
import { parseBurstArgs, UsageError, type BurstOptions } from '../bench/lib/options.js';
import { formatReport } from '../bench/lib/report.js';
import { runBurst } from '../bench/lib/run-burst.js';
import { startApi, type RunningApi } from '../services/api/server.js';
import { createLogger } from '../shared/logger.js';
import { burstOptions } from './support/burst.js';
import { openListeningTestApi, TEST_ADMIN_TOKEN } from './support/context.js';

/**
 * The burst tool against a real instance: the API listening on a free port (the tool speaks
 * HTTP, not app.inject), two workers, this file's own database and queue prefix.
 */

const { ctx, api } = await openListeningTestApi();
await ctx.startWorker();
await ctx.startWorker();

function options(...extra: string[]): BurstOptions {
  return burstOptions(api.url, ctx, 42, ...extra);
}

describe('burst tool', () => {
  it('runs a small burst (300 single-seat requests on 100 seats) and its audit passes', async () => {
    const report = await runBurst(options('--create-show', '--seats', '100', '--requests', '300', '--concurrency', '50', '--cancel-share', '0'));

    expect(report.requests).toMatchObject({ planned: 300, submitted: 300, accepted: 300, notAccepted: 0, decided: 300, undecided: 0 });
    expect(report.outcomes).toEqual({ HELD: 100, 'FAILED:SOLD_OUT': 200 });
    // Every request got its 202; a 503 shed by the overload guard on a busy machine would have been retried.
    expect(report.http.submit?.['202']).toBe(300);
    expect(report.serverErrors).toBe(0);
    expect(report.verdict).toBe('pass');
    expect(report.audit?.checks.map((c) => [c.name, c.ok])).toEqual([
      ['no-double-booking', true],
      ['capacity', true],
      ['no-lost-request', true],
      ['seat-map-agrees', true],
      ['no-seat-left-available', true],
      ['no-seat-available-while-waitlisted', true],
    ]);
    expect(report.acceptLatencyMs.count).toBe(300);
    expect(report.timeToDecisionMs.server?.count).toBe(300);
    expect(report.rates.decisionsPerSecondServer).toBeGreaterThan(0);
    expect(report.queueDepthSource).toBe('redis');
    expect(report.generator.cpuUserMs).toBeGreaterThan(0);
    // Polls ask the API to wait for the decision (Prefer: wait): about one status request per booking.
    expect(report.polls.waitSeconds).toBe(25);
    expect(report.polls.total).toBeGreaterThanOrEqual(300);
    expect(report.polls.perBooking).toBeLessThanOrEqual(1.1);

    const html = renderHtml(report);
    expect(html).toMatch(/^<!doctype html>/);
    expect(html).toContain('<svg');
    expect(html).toContain('Audit: <span class="ok">PASS</span>');
    expect(html).not.toMatch(/<script|https?:\/\/(?!127\.0\.0\.1)/); // self-contained: no scripts, no CDN
  });

  it('--submit-wait asks for each decision in the booking\'s own answer: one request per booking, no polls, audit passing', async () => {
    const report = await runBurst(options('--create-show', '--seats', '40', '--requests', '120', '--concurrency', '30', '--confirm-ratio', '1', '--submit-wait', '25'));
    expect(report.requests).toMatchObject({ planned: 120, submitted: 120, accepted: 120, decided: 120, undecided: 0 });
    expect(report.outcomes).toEqual({ HELD: 40, 'FAILED:SOLD_OUT': 80 });
    // Each answer waited for its decision (200); none needed a poll, and each hold was settled.
    expect(report.http.submit).toEqual({ '200': 120 });
    expect(report.polls.total).toBe(0);
    expect(report.http.confirm).toEqual({ '200': 40 });
    // No answer came at acceptance, so no accept latency was measured.
    expect(report.acceptLatencyMs.count).toBe(0);
    expect(report.timeToDecisionMs.server?.count).toBe(120);
    expect(report.verdict).toBe('pass');
  });

  it('settles holds as asked and books specific seats on a reserved show', async () => {
    const report = await runBurst(
      options(
        '--create-show', '--sections', 'VIP:2x10:9900,Floor:4x20:4900',
        '--requests', '80', '--concurrency', '20', '--seat-count', '1-3', '--specific-seats-ratio', '0.5',
        '--confirm-ratio', '0.5', '--cancel-share', '1',
      ),
    );
    expect(report.verdict).toBe('pass');
    expect(report.requests.decided).toBe(80);
    const held = report.outcomes.HELD ?? 0;
    expect(held).toBeGreaterThan(0);
    // Every hold was confirmed or cancelled (cancel-share 1 leaves none to lapse).
    expect(report.settle.confirmed + report.settle.cancelled).toBe(held);
    expect(report.settle.leftToLapse).toBe(0);
  });

  it('--preconnect opens every connection with a GET /health before the burst', async () => {
    const before = await answered(api, 'GET', '/health', 200);
    const report = await runBurst(options('--create-show', '--seats', '20', '--requests', '60', '--concurrency', '12', '--preconnect'));
    expect(report.verdict).toBe('pass');
    expect(report.options.preconnect).toBe(true);
    expect((await answered(api, 'GET', '/health', 200)) - before).toBe(12);
  });

  it('--generator-warmup sends that many 404s before the clock, none of them in the report', async () => {
    const bookings = await answered(api, 'POST', '/booking', 404);
    const polls = await answered(api, 'GET', '/booking/:id/status', 404);
    const report = await runBurst(options('--create-show', '--seats', '20', '--requests', '60', '--concurrency', '12', '--generator-warmup', '40'));
    expect(report.verdict).toBe('pass');
    expect((await answered(api, 'POST', '/booking', 404)) - bookings).toBe(20);
    expect((await answered(api, 'GET', '/booking/:id/status', 404)) - polls).toBe(20);
    expect(report.http.submit).toEqual({ '202': 60 });
    expect(report.requests.accepted).toBe(60);
    expect(report.sendLagMs).toBeNull(); // a burst has no due times
  });

  it('in open loop, reports how late the generator sent each request, overall and per sample', async () => {
    const report = await runBurst(options('--create-show', '--seats', '20', '--requests', '150', '--concurrency', '20', '--arrival', 'rate:300'));
    expect(report.verdict).toBe('pass');
    expect(report.sendLagMs).toMatchObject({ count: 150 });
    expect(report.sendLagMs!.max).toBeGreaterThanOrEqual(report.sendLagMs!.p50);
    expect(report.timeline.some((sample) => sample.sendLagP99Ms !== null && sample.acceptP99Ms !== null)).toBe(true);
    expect(formatReport(report)).toContain('of which the generator sent late');
  });

  it('spreads its connections over several API replicas', async () => {
    const second = await startApi(ctx.configWith({ PORT: '0' }), createLogger(ctx.config, 'burst-test-2'), { listen: true });
    try {
      const before = await Promise.all([api, second].map(bookingPosts));
      const parsed = parseBurstArgs([
        '--url', `${api.url},${second.url}`,
        '--admin-token', TEST_ADMIN_TOKEN,
        '--database-url', ctx.databaseUrl,
        '--no-progress',
        '--create-show', '--seats', '40', '--requests', '120', '--concurrency', '10',
      ]);
      if (parsed === 'help') throw new Error('unexpected help');
      expect(parsed.urls).toEqual([api.url, second.url]);
      const report = await runBurst(parsed);
      expect(report.verdict).toBe('pass');
      expect(report.http.submit?.['202']).toBe(120);
      const served = (await Promise.all([api, second].map(bookingPosts))).map((count, i) => count - before[i]!);
      // Sockets alternate between the replicas, so each carried about half of the bookings.
      expect(served[0]! + served[1]!).toBe(120);
      expect(Math.min(...served)).toBeGreaterThanOrEqual(30);
    } finally {
      await second.close();
    }
  });
});

/** Requests a replica has answered with `status` on `method route`, from its own /metrics. */
async function answered(replica: RunningApi, method: string, route: string, status: number): Promise<number> {
  const reply = await replica.app.inject({ method: 'GET', url: '/metrics' });
  const line = reply.body
    .split('\n')
    .find((l) => l.startsWith('ticket_rush_http_requests_total{') && l.includes(`method="${method}"`) && l.includes(`route="${route}"`) && l.includes(`status_code="${status}"`));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
}

const bookingPosts = (replica: RunningApi) => answered(replica, 'POST', '/booking', 202);

describe('burst options', () => {
  const parse = (...args: string[]) => () => parseBurstArgs(args, {});

  it('names the option that is wrong', () => {
    expect(parse('--show', 'nope')).toThrow(/--show: "nope" is not a show id/);
    expect(parse('--create-show')).toThrow(/--seats N or --sections/);
    expect(parse('--create-show', '--seats', '10')).toThrow(/--admin-token/);
    expect(parse('--create-show', '--seats', '10', '--admin-token', 'x', '--arrival', 'soon')).toThrow(/--arrival/);
    expect(parse('--create-show', '--seats', '10', '--admin-token', 'x', '--seat-count', '3-1')).toThrow(/--seat-count/);
    expect(parse('--create-show', '--seats', '10', '--admin-token', 'x', '--confirm-ratio', '1.5')).toThrow(/--confirm-ratio/);
    expect(parse('--create-show', '--sections', 'VIP:2by3', '--admin-token', 'x')).toThrow(/--sections/);
    expect(parse('--create-show', '--seats', '10', '--admin-token', 'x', '--poll-wait', '31')).toThrow(/--poll-wait/);
    expect(parse('--frobnicate')).toThrow(UsageError);
  });

  it('reports every bad flag at once, each naming itself', () => {
    const bad = parse('--create-show', '--seats', '0', '--admin-token', 'x', '--arrival', 'soon', '--confirm-ratio', 'lots');
    expect(bad).toThrow(/--seats: must be between 1 and 100000 \(got 0\)/);
    expect(bad).toThrow(/--arrival: use burst/);
    expect(bad).toThrow(/--confirm-ratio: must be a number from 0 to 1/);
  });

  it('parses arrivals, ranges and sections', () => {
    const parsed = parseBurstArgs(
      ['--create-show', '--sections', 'VIP:2x10:9900,Floor:20x50', '--admin-token', 'tok', '--arrival', 'ramp:30', '--seat-count', '1-4', '--no-audit'],
      {},
    );
    expect(parsed).toMatchObject({
      arrival: { kind: 'ramp', seconds: 30 },
      seatCount: { min: 1, max: 4 },
      shows: { kind: 'create-sections', count: 1, sections: [{ name: 'VIP', rows: 2, seatsPerRow: 10, priceCents: 9900 }, { name: 'Floor', rows: 20, seatsPerRow: 50, priceCents: 0 }] },
      audit: false,
      databaseUrl: null,
    });
    expect(parseBurstArgs(['--help'])).toBe('help');
  });

  it('takes several API replicas, repeated or comma-separated, and plain http only', () => {
    const show = ['--show', '0b7c5a2e-4a8e-4c8e-9c1e-1f2a3b4c5d6e', '--no-audit'];
    expect(parseBurstArgs(['--url', 'http://127.0.0.1:3001/,http://127.0.0.1:3002', '--url', 'http://localhost:3003', ...show], {})).toMatchObject({
      urls: ['http://127.0.0.1:3001', 'http://127.0.0.1:3002', 'http://localhost:3003'],
    });
    expect(parseBurstArgs(show, {})).toMatchObject({ urls: ['http://127.0.0.1:3000'] });
    expect(parse('--url', 'https://tickets.example', ...show)).toThrow(/--url: unsupported scheme "https:"/);
  });
});
