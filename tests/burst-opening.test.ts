import { randomUUID } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { auditOpening, drawKeyOf } from '../bench/lib/audit.js';
import { parseBurstArgs, UsageError, type BurstOptions } from '../bench/lib/options.js';
import { formatReport, type BurstReport } from '../bench/lib/report.js';
import { runBurst } from '../bench/lib/run-burst.js';
import type { PublishedDraw, ShowOpening } from '../bench/lib/sale-opening.js';
import { scenarios } from '../bench/lib/scenarios.js';
import { burstOptions } from './support/burst.js';
import { openListeningTestApi } from './support/context.js';

/**
 * The burst tool's scheduled sale (`--sales-open-in`): scenario (e) at a small size against a
 * real instance (API listening on a free port, one worker), then the audit's opening checks
 * shown to fail on a tampered draw.
 */

const { ctx, api } = await openListeningTestApi();
// One worker process. The line is strict with several too (one released batch per show in
// flight): tests/line-processes.test.ts decides a sold-out opening with two.
await ctx.startWorker();

function options(...extra: string[]): BurstOptions {
  return burstOptions(api.url, ctx, 13, ...extra);
}

const SEATS = 50;
const REQUESTS = 200;
let report: BurstReport;

describe('npm run burst -- --sales-open-in', () => {
  it('fills the waiting room, opens, and its audit verifies the draw and the line order', async () => {
    // Scenario (e)'s shape, a hundredth of its size, sent at once into a room opening 6 s after
    // the show's creation (a loaded machine may still land some after the opening: they line up
    // behind the room, and every check below holds either way).
    const e = scenarios(true).e;
    expect(e.salesOpenInSeconds).toBeGreaterThan(0);
    report = await runBurst(
      options(
        '--create-show', '--seats', String(SEATS),
        '--requests', String(REQUESTS), '--concurrency', '50',
        '--sales-open-in', '6', '--arrival', 'burst', '--cancel-share', '0',
      ),
    );

    expect(report.requests).toMatchObject({ planned: REQUESTS, accepted: REQUESTS, decided: REQUESTS, undecided: 0 });
    const opening = report.opening!;
    expect(opening).toMatchObject({ overtakes: 0, maxOvertakes: 0 });
    expect(opening.waitingRoom).toBeGreaterThan(0);
    expect(opening.acceptedBeforeOpening + opening.acceptedAfterOpening).toBe(REQUESTS);
    expect(opening.openingToFirstDecisionMs).toBeGreaterThanOrEqual(0);
    expect(opening.openingToLastDecisionMs).toBeGreaterThanOrEqual(opening.openingToFirstDecisionMs!);
    expect(report.outcomes).toEqual({ HELD: SEATS, 'FAILED:SOLD_OUT': REQUESTS - SEATS });
    expect(report.audit?.checks.map((c) => [c.name, c.ok])).toEqual([
      ['no-double-booking', true],
      ['capacity', true],
      ['no-lost-request', true],
      ['seat-map-agrees', true],
      ['no-seat-left-available', true],
      ['no-seat-available-while-waitlisted', true],
      ['draw-verifies', true],
      ['line-order', true],
    ]);
    expect(report.verdict).toBe('pass');
    expect(formatReport(report)).toMatch(/Scheduled sale: opened .*\n {2}waiting room +[\d,]+ entries in the draw/);
  });

  it('the HELD set is exactly the first N of the line: the draw, recomputed here from the revealed seed, then later arrivals', async () => {
    const show = report.shows[0]!;
    const draw = (await fetch(`${api.url}/shows/${show.id}/draw`).then((r) => r.json())) as PublishedDraw;
    const seed = Buffer.from(draw.seed, 'hex');
    const rows = await ctx.pool.query<{ id: string; status: string }>(`SELECT id::text, status FROM bookings WHERE show_id = $1 ORDER BY accepted_at, id`, [show.id]);
    const rank = new Map(draw.keys.map((key, index) => [key, index]));
    const line = rows.rows
      .map((row, arrival) => ({ ...row, place: rank.get(drawKeyOf(seed, row.id)) ?? draw.keys.length + arrival }))
      .sort((a, b) => a.place - b.place);
    expect(line.slice(0, SEATS).every((row) => row.status === 'HELD')).toBe(true);
    expect(line.slice(SEATS).every((row) => row.status === 'FAILED')).toBe(true);
  });

  describe('the audit fails a draw that does not verify', () => {
    let opening: ShowOpening;
    let draw: PublishedDraw;
    beforeAll(async () => {
      const show = report.shows[0]!;
      const view = (await fetch(`${api.url}/shows/${show.id}`).then((r) => r.json())) as { sales_open_at: string; seed_sha256: string };
      opening = { showId: show.id, salesOpenAt: view.sales_open_at, seedSha256: view.seed_sha256 };
      draw = (await fetch(`${api.url}/shows/${show.id}/draw`).then((r) => r.json())) as PublishedDraw;
    });
    const audit = (tampered: PublishedDraw, commitment = opening.seedSha256) =>
      auditOpening(ctx.pool, {
        openings: [{ ...opening, seedSha256: commitment }],
        draws: new Map([[opening.showId, tampered]]),
        acceptedIds: report.acceptedIds!,
        graceSeconds: 1,
        maxOvertakes: 0,
      });
    const byName = (result: Awaited<ReturnType<typeof audit>>, name: string) => result.checks.find((c) => c.name === name)!;

    it('as published, it passes', async () => {
      const result = await audit(draw);
      expect(result.checks.every((c) => c.ok)).toBe(true);
      expect(result).toMatchObject({ overtakes: 0, overtaken: 0 });
    });

    it('a seed that is not the commitment', async () => {
      const result = await audit({ ...draw, seed: 'ab'.repeat(32) });
      expect(byName(result, 'draw-verifies').ok).toBe(false);
      expect(byName(result, 'draw-verifies').examples.join('\n')).toMatch(/is not the commitment published at creation/);
    });

    it('a commitment that changed after the creation', async () => {
      expect(byName(await audit(draw, 'cd'.repeat(32)), 'draw-verifies').ok).toBe(false);
    });

    it('a key nobody drew with, and a waiting request left out', async () => {
      const keys = [...draw.keys];
      keys[0] = drawKeyOf(Buffer.from(draw.seed, 'hex'), randomUUID());
      const result = await audit({ ...draw, keys: keys.sort() });
      const examples = byName(result, 'draw-verifies').examples.join('\n');
      expect(examples).toMatch(/is no accepted request's HMAC/);
      expect(examples).toMatch(/waited .* but is not in the draw/);
    });

    it('decisions against the line: the draw reversed counts every pair as an overtake', async () => {
      const result = await audit({ ...draw, keys: [...draw.keys].reverse() });
      expect(byName(result, 'draw-verifies').examples.join('\n')).toMatch(/keys not ascending/);
      // Reversed, refused entries of the room stand before its holders: each holder overtook them.
      expect(result.overtakes).toBeGreaterThan(0);
      expect(result.overtaken).toBeGreaterThan(0);
      expect(result.overtaken).toBeLessThanOrEqual(Math.min(result.overtakes, REQUESTS - SEATS));
      expect(byName(result, 'line-order').ok).toBe(false);
    });
  });
});

describe('--sales-open-in options', () => {
  const parse = (...argv: string[]) => () => parseBurstArgs(['--admin-token', 'x'.repeat(16), ...argv]);
  it('needs a show it creates, and --arrival wait needs the wait', () => {
    expect(parse('--show', randomUUID(), '--sales-open-in', '5')).toThrow(UsageError);
    expect(parse('--create-show', '--seats', '5', '--arrival', 'wait')).toThrow(/--sales-open-in/);
    expect(parse('--create-show', '--seats', '5', '--sales-open-in', '0')).toThrow(/--sales-open-in/);
  });

  it('spreads --arrival wait over the wait, ending before the opening', () => {
    const parsed = parseBurstArgs(['--admin-token', 'x'.repeat(16), '--create-show', '--seats', '5', '--requests', '800', '--sales-open-in', '10', '--arrival', 'wait', '--max-overtakes', '3']);
    if (parsed === 'help') throw new Error('unexpected help');
    expect(parsed.sale).toEqual({ opensInSeconds: 10, maxOvertakes: 3 });
    expect(parsed.arrival).toEqual({ kind: 'rate', perSecond: 100 });
  });
});
