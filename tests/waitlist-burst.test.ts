import { afterAll, describe, expect, it } from 'vitest';
import { auditBookings } from '../bench/lib/audit.js';
import { runBurst } from '../bench/lib/run-burst.js';
import { burstOptions } from './support/burst.js';
import { openListeningTestApi } from './support/context.js';
import { ProcessRegistry, serviceEnv } from './support/processes.js';

/**
 * The waiting list under a burst, decided by three worker processes at once: half the
 * best-available requests ask for the list, holds and offers last 2 s and half the unconfirmed
 * ones are cancelled, so seats are freed and offered all through the run, by sweeps, cancels and
 * claims in different processes. The audit (bench/lib/audit.ts) must pass, including "no seat
 * AVAILABLE while a WAITLISTED entry of its scope fits", during the run's churn and again once
 * the workers have stopped.
 */

const SHORT_HOLDS = { HOLD_SECONDS: '2', WAITLIST_OFFER_SECONDS: '2', EXPIRY_INTERVAL_SECONDS: '1', MAX_SEATS_PER_CUSTOMER: '100' };

const { ctx, api } = await openListeningTestApi(SHORT_HOLDS);
const processes = new ProcessRegistry(serviceEnv(ctx.config, { DB_POOL_SIZE: '3' }));
afterAll(() => processes.stopAll());
await Promise.all([processes.startWorker(), processes.startWorker(), processes.startWorker()]);

describe('the waiting list under a burst with three worker processes', () => {
  it('joins, offers and passes on seats without ever leaving one AVAILABLE beside a fitting entry', async () => {
    const parsed = burstOptions(
      api.url,
      ctx,
      15,
      '--create-show', '--sections', 'VIP:2x5:9900,Floor:4x10:4900',
      '--requests', '400', '--concurrency', '40', '--seat-count', '1-3',
      '--waitlist-ratio', '0.5', '--confirm-ratio', '0.3', '--cancel-share', '0.5',
    );
    const report = await runBurst(parsed);

    expect(report.requests).toMatchObject({ accepted: 400, undecided: 0 });
    // Holds of 2 s: some lapse before their first poll (seen EXPIRED, not counted as decided).
    expect(report.requests.decided + report.requests.lapsedUnseen).toBe(400);
    expect(report.serverErrors).toBe(0);
    expect(report.outcomes.WAITLISTED).toBeGreaterThan(0);
    // A request offered seats before its first poll is counted HELD in the outcomes, so more
    // joined the list than the outcomes show WAITLISTED.
    expect(report.waitlist!.joined).toBeGreaterThanOrEqual(report.outcomes.WAITLISTED!);
    expect(Object.values(report.waitlist!.offers).reduce((sum, n) => sum + n, 0)).toBeGreaterThan(0);
    expect(report.audit?.checks.filter((check) => !check.ok)).toEqual([]);

    await processes.stopAll();
    const settled = await auditBookings(ctx.pool, { showIds: report.shows.map((show) => show.id), acceptedIds: report.acceptedIds! });
    expect(settled.checks.filter((check) => !check.ok)).toEqual([]);
    // A bound that must end, not a speed check: alone it takes seconds, beside the whole suite on
    // two busy cores more than the default minute.
  }, 240_000);
});
