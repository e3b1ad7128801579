import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { auditBookings, auditOpening, type AuditReport } from './audit.js';
import { LoadGenerator } from './generator.js';
import { HttpClient } from './http.js';
import type { BurstOptions } from './options.js';
import { prepareShows, RequestPlan } from './plan.js';
import { Poller } from './poller.js';
import { ApiPositionProbe, RedisDepthProbe, type DepthProbe } from './queue-depth.js';
import { Random } from './random.js';
import type { BurstReport, DrainReport } from './report.js';
import { fetchDraw, type OpeningReport, type PublishedDraw } from './sale-opening.js';
import { readServerTimings, type ServerTimings } from './server-stats.js';
import type { Queryable } from './audit.js';
import { RunStats, type Sample } from './stats.js';
import { warmGenerator } from './generator-warmup.js';
import { waitlistFigures, type WaitlistFigures } from './waitlist-figures.js';

/**
 * One burst, end to end: prepare the shows, send the requests, follow each to its decision and
 * settle the holds, then read the timings and the audit from the database. Used by the CLI
 * (bench/burst.ts), the benchmark (bench/run.ts) and the tests.
 */

const SAMPLE_MS = 500;

export type ProgressSink = (line: string, final: boolean) => void;

export type BurstHooks = {
  /**
   * Called once every request has its answer (all accepted ones queued), before the run waits
   * for decisions: the drain starts its workers here. Its time is the drain's start.
   */
  beforeDecisions?: () => Promise<void>;
};

export async function runBurst(options: BurstOptions, progress: ProgressSink | null = null, hooks: BurstHooks = {}): Promise<BurstReport> {
  const submitHttp = new HttpClient(options.urls, options.concurrency);
  const pollHttp = new HttpClient(options.urls, options.pollConcurrency);
  const stats = new RunStats();
  const probe: DepthProbe = options.redisUrl ? new RedisDepthProbe(options.redisUrl, options.queuePrefix) : new ApiPositionProbe(stats);
  let sampler: NodeJS.Timeout | undefined;
  try {
    // A scheduled sale: shows created here open this long after their creation; existing ones
    // (the bench creates its own) say when they open. The run waits for the last opening.
    const creating = options.sale && options.shows.kind !== 'existing';
    const shows = await prepareShows(pollHttp, options.shows, options.adminToken, creating ? new Date(Date.now() + options.sale!.opensInSeconds * 1_000) : null);
    const opensAt = options.sale ? new Date(Math.max(...shows.map((show) => Date.parse(show.salesOpenAt)))) : null;
    const plan = new RequestPlan(shows, options);
    const poller = new Poller(pollHttp, stats, new Random(options.seed ^ 0x5bd1e995), {
      pollMs: options.pollMs,
      maxInFlight: options.pollConcurrency,
      waitSeconds: options.pollWaitSeconds,
      confirmRatio: options.confirmRatio,
      cancelShare: options.cancelShare,
      maxRetries: options.maxRetries,
      ...(opensAt ? { firstPollAt: performance.now() + (opensAt.getTime() - Date.now()) } : {}),
    });
    const generator = new LoadGenerator(submitHttp, plan, stats, poller, {
      requests: options.requests,
      concurrency: options.concurrency,
      arrival: options.arrival,
      maxRetries: options.maxRetries,
      submitWaitSeconds: options.submitWaitSeconds,
    });

    let sampling = false;
    const takeSample = async (final: boolean) => {
      if (sampling && !final) return;
      sampling = true;
      try {
        const depth = await probe.read();
        // Without Redis and with nothing left undecided, the queue is known to be empty.
        const waiting = depth.waiting ?? (stats.accepted > 0 && poller.undecided.size === 0 ? 0 : null);
        const sample: Sample = {
          t: (performance.now() - stats.startedAt) / 1_000,
          submitted: stats.submitted,
          accepted: stats.accepted,
          decided: stats.decided,
          confirmed: stats.confirmed,
          queueDepth: waiting,
          active: depth.active,
          inFlight: stats.inFlight,
          pollBacklog: poller.backlog,
          rateLimited: stats.rateLimited(),
          acceptP99Ms: percentile(stats.recentAccepts.splice(0), 0.99),
          sendLagP99Ms: percentile(stats.recentSendLags.splice(0), 0.99),
        };
        stats.timeline.push(sample);
        progress?.(progressLine(stats.timeline, options.requests), final);
      } finally {
        sampling = false;
      }
    };

    if (options.preconnect) await submitHttp.openAll('/health');
    if (options.generatorWarmup > 0) await warmGenerator(submitHttp, pollHttp, options.generatorWarmup, options.concurrency);
    const startedAtEpoch = Date.now();
    const cpuBefore = process.cpuUsage();
    sampler = setInterval(() => void takeSample(false), SAMPLE_MS);
    // How many were accepted by the opening: read at the opening, or when sending ended before it.
    let acceptedBeforeOpening: number | null = null;
    const atOpening = opensAt ? setTimeout(() => (acceptedBeforeOpening = stats.accepted), opensAt.getTime() - Date.now()) : undefined;
    await generator.run();
    let workersStartedAtMs: number | null = null;
    if (hooks.beforeDecisions) {
      workersStartedAtMs = Date.now();
      await hooks.beforeDecisions();
    }
    if (opensAt && Date.now() < opensAt.getTime()) {
      clearTimeout(atOpening);
      acceptedBeforeOpening = stats.accepted;
    }
    // Decisions are waited for from the opening on.
    const waitMs = opensAt ? Math.max(0, opensAt.getTime() - Date.now()) : 0;
    const deadline = setTimeout(() => poller.stop(), waitMs + options.decisionTimeoutSeconds * 1_000);
    await poller.finish();
    clearTimeout(deadline);
    clearTimeout(atOpening);
    clearInterval(sampler);
    await takeSample(true);
    const wallMs = performance.now() - stats.startedAt;
    const cpu = process.cpuUsage(cpuBefore);

    let server: ServerTimings | null = null;
    let audit: AuditReport | null = null;
    let opening: OpeningReport | null = null;
    let waitlist: WaitlistFigures | null = null;
    let drain: DrainReport | null = null;
    if (options.databaseUrl) {
      const db = new pg.Pool({ connectionString: options.databaseUrl, max: 2, application_name: 'ticket-rush-burst-audit' });
      try {
        server = await readServerTimings(db, stats.acceptedIds, startedAtEpoch);
        if (options.waitlistRatio > 0) waitlist = await waitlistFigures(db, stats.acceptedIds);
        if (workersStartedAtMs !== null && server) drain = await drainFigures(db, stats.acceptedIds, workersStartedAtMs, server);
        if (options.audit) {
          audit = await auditBookings(db, { showIds: shows.map((s) => s.id), acceptedIds: stats.acceptedIds, graceSeconds: options.auditGraceSeconds });
        }
        if (options.sale && opensAt) {
          const draws = new Map<string, PublishedDraw>();
          const drawDeadline = opensAt.getTime() + options.decisionTimeoutSeconds * 1_000;
          for (const show of shows) draws.set(show.id, await fetchDraw(pollHttp, show.id, drawDeadline));
          const checked = await auditOpening(db, {
            openings: shows.map((show) => ({ showId: show.id, salesOpenAt: show.salesOpenAt, seedSha256: show.seedSha256 })),
            draws,
            acceptedIds: stats.acceptedIds,
            graceSeconds: options.auditGraceSeconds,
            maxOvertakes: options.sale.maxOvertakes,
          });
          if (audit) audit = { ...audit, ok: audit.ok && checked.checks.every((c) => c.ok), checks: [...audit.checks, ...checked.checks] };
          const before = acceptedBeforeOpening ?? stats.accepted;
          opening = {
            salesOpenAt: opensAt.toISOString(),
            waitingRoom: [...draws.values()].reduce((sum, draw) => sum + draw.entries, 0),
            acceptedBeforeOpening: before,
            acceptedAfterOpening: stats.accepted - before,
            drawnAt: [...draws.values()].map((draw) => draw.drawn_at).sort()[0] ?? null,
            openingToFirstDecisionMs: checked.openingToFirstDecisionMs,
            openingToLastDecisionMs: checked.openingToLastDecisionMs,
            overtakes: checked.overtakes,
            overtaken: checked.overtaken,
            maxOvertakes: options.sale.maxOvertakes,
          };
        }
      } finally {
        await db.end();
      }
    }

    const http = Object.fromEntries(Object.entries(stats.http).map(([kind, tally]) => [kind, tally.toJSON()]));
    let serverErrors = 0;
    for (const [kind, codes] of Object.entries(http)) {
      for (const [code, count] of Object.entries(codes)) {
        if (Number(code) >= 500) serverErrors += code === '503' ? count - stats.retried.get(`${kind}:503`) : count;
      }
    }
    const acceptWindow = Math.max(0.001, (stats.lastAcceptedAt - stats.startedAt) / 1_000);
    const decideWindow = Math.max(0.001, (stats.lastDecidedAt - stats.startedAt) / 1_000);
    const { adminToken: _token, ...publicOptions } = options;
    return {
      tool: 'ticket-rush burst',
      startedAt: new Date(startedAtEpoch).toISOString(),
      options: { ...publicOptions, databaseUrl: redactUrl(options.databaseUrl), redisUrl: redactUrl(options.redisUrl) },
      shows: shows.map((s) => ({ id: s.id, totalSeats: s.totalSeats, sections: s.sections.map((section) => section.name) })),
      durationSeconds: wallMs / 1_000,
      requests: {
        planned: options.requests,
        submitted: stats.submitted,
        accepted: stats.accepted,
        notAccepted: stats.notAccepted,
        decided: stats.decided,
        lapsedUnseen: stats.lapsedUnseen,
        undecided: poller.undecided.size,
      },
      rateLimited: stats.rateLimited(),
      rates: {
        acceptedPerSecond: stats.accepted / acceptWindow,
        decisionsPerSecondObserved: stats.decided / decideWindow,
        decisionsPerSecondServer: server?.decisionsPerSecond ?? null,
        peakDecisionsPerSecondServer: server?.peakDecisionsPerSecond ?? null,
        decisionsPerSecondBacklogged: probe.source === 'redis' && server ? backloggedRate(stats.timeline, server.perSecond) : null,
      },
      acceptLatencyMs: stats.acceptLatency.summary(),
      timeToDecisionMs: { observedByPolling: stats.decisionLatency.summary(), server: server?.timeToDecisionMs ?? null },
      pollLagMs: stats.pollLag.summary(),
      sendLagMs: options.arrival.kind === 'burst' ? null : stats.sendLag.summary(),
      polls: pollCount(stats, options.pollWaitSeconds),
      outcomes: stats.outcomes.toJSON(),
      waitlist,
      settle: { confirmed: stats.confirmed, cancelled: stats.cancelled, leftToLapse: stats.leftToLapse, rejected: stats.settleRejected.toJSON() },
      http,
      retried: stats.retried.toJSON(),
      errors: stats.errors.toJSON(),
      serverErrors,
      generator: {
        cpuUserMs: cpu.user / 1_000,
        cpuSystemMs: cpu.system / 1_000,
        cpuPercentOfOneCore: ((cpu.user + cpu.system) / 1_000 / wallMs) * 100,
      },
      queueDepthSource: probe.source,
      timeline: stats.timeline,
      serverTimeline: server?.perSecond ?? null,
      histograms: {
        acceptLatency: stats.acceptLatency.histogram(),
        timeToDecisionObserved: stats.decisionLatency.histogram(),
        timeToDecisionServer: server?.timeToDecisionHistogram ?? null,
      },
      audit,
      opening,
      drain,
      verdict: audit ? (audit.ok ? 'pass' : 'fail') : 'not-audited',
      acceptedIds: stats.acceptedIds,
    };
  } finally {
    clearInterval(sampler);
    await Promise.allSettled([submitHttp.close(), pollHttp.close(), probe.close()]);
  }
}

/** The drain's figures from the database timestamps: the rate first to last decision, and none decided before the workers. */
async function drainFigures(db: Queryable, acceptedIds: string[], workersStartedAtMs: number, server: ServerTimings): Promise<DrainReport> {
  const { rows } = await db.query(`SELECT count(*)::int AS early FROM bookings WHERE id = ANY($1::uuid[]) AND decided_at < to_timestamp($2 / 1000.0)`, [
    acceptedIds,
    workersStartedAtMs,
  ]);
  const span = Math.max(0.001, (server.lastDecidedAtMs - server.firstDecidedAtMs) / 1_000);
  return {
    workersStartedAt: new Date(workersStartedAtMs).toISOString(),
    decidedBeforeWorkers: (rows[0] as { early: number }).early,
    startToFirstDecisionMs: server.firstDecidedAtMs - workersStartedAtMs,
    firstToLastDecisionMs: server.lastDecidedAtMs - server.firstDecidedAtMs,
    decisionsPerSecond: server.decided / span,
  };
}

/**
 * The decision rate over the whole seconds in which every queue-depth sample showed requests
 * waiting, so the workers never idled for want of work. Null when no such second exists.
 */
export function backloggedRate(timeline: Sample[], perSecond: Array<{ t: number; decided: number }>): number | null {
  let seconds = 0;
  let decided = 0;
  for (const bin of perSecond) {
    const inside = timeline.filter((sample) => sample.t >= bin.t && sample.t < bin.t + 1);
    if (inside.length === 0 || inside.some((sample) => !sample.queueDepth)) continue;
    seconds++;
    decided += bin.decided;
  }
  return seconds > 0 ? decided / seconds : null;
}

function redactUrl(text: string | null): string | null {
  if (!text) return text;
  const parsed = new URL(text);
  if (parsed.password) parsed.password = '***';
  return parsed.toString();
}

/** "t 12.0 s | submitted 8,000/20,000 | accepted 7,990 (650/s) | decided ..." from the last samples. */
function progressLine(timeline: Sample[], planned: number): string {
  const now = timeline[timeline.length - 1]!;
  // Rates over the last second or so.
  let before = now;
  for (let index = timeline.length - 1; index >= 0 && now.t - timeline[index]!.t < 1; index--) before = timeline[index - 1] ?? before;
  const dt = Math.max(0.001, now.t - before.t);
  const rate = (a: number, b: number) => Math.round((a - b) / dt);
  const n = (value: number) => value.toLocaleString('en-US');
  return [
    `t ${now.t.toFixed(1)} s`,
    `submitted ${n(now.submitted)}/${n(planned)}`,
    `accepted ${n(now.accepted)} (${n(rate(now.accepted, before.accepted))}/s)`,
    `decided ${n(now.decided)} (${n(rate(now.decided, before.decided))}/s)`,
    `confirmed ${n(now.confirmed)}`,
    `queue ${now.queueDepth === null ? '?' : n(now.queueDepth)}${now.active === null ? '' : ` (+${n(now.active)} jobs active)`}`,
    `in flight ${n(now.inFlight)}`,
    `polling ${n(now.pollBacklog)}`,
    ...(now.rateLimited > 0 ? [`RATE LIMITED: ${n(now.rateLimited)} x 429 (see the report)`] : []),
  ].join(' | ');
}

/** Every status request the poller sent: answered (any code) or lost to a network error. */
function pollCount(stats: RunStats, waitSeconds: number): BurstReport['polls'] {
  const answered = [...stats.http.poll.counts.values()].reduce((sum, count) => sum + count, 0);
  const lost = [...stats.errors.counts].reduce((sum, [key, count]) => sum + (key.startsWith('poll:') ? count : 0), 0);
  const total = answered + lost;
  return { total, perBooking: stats.accepted > 0 ? total / stats.accepted : 0, waitSeconds };
}

/** The `p` quantile of `values` (sorted here), rounded to 0.1 ms; null when there are none. */
function percentile(values: number[], p: number): number | null {
  if (values.length === 0) return null;
  values.sort((a, b) => a - b);
  return Math.round(values[Math.min(values.length - 1, Math.floor(values.length * p))]! * 10) / 10;
}
