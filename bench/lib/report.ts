import type { AuditReport } from './audit.js';
import { formatAudit } from './audit.js';
import type { LatencyBucket, LatencySummary } from './latency.js';
import type { BurstOptions } from './options.js';
import { formatOpening, type OpeningReport } from './sale-opening.js';
import type { Sample } from './stats.js';
import type { WaitlistFigures } from './waitlist-figures.js';

/** What a burst run found: the JSON report's shape, and its rendering for the terminal. */

export type BurstReport = {
  tool: 'ticket-rush burst';
  startedAt: string;
  options: Omit<BurstOptions, 'adminToken' | 'databaseUrl' | 'redisUrl'> & { databaseUrl: string | null; redisUrl: string | null };
  shows: Array<{ id: string; totalSeats: number; sections: string[] }>;
  durationSeconds: number;
  requests: {
    planned: number;
    submitted: number;
    accepted: number;
    notAccepted: number;
    decided: number;
    /** Holds already EXPIRED when first polled: no decision was observed for them. */
    lapsedUnseen: number;
    undecided: number;
  };
  /** 429 answers of every kind (submit, poll, settle): the API's per-client rate limit throttled the run. */
  rateLimited: number;
  rates: {
    acceptedPerSecond: number;
    /** Decisions seen by polling, per second from the first request to the last decision seen. */
    decisionsPerSecondObserved: number;
    /** From the database (see server-stats.ts); null without a database. */
    decisionsPerSecondServer: number | null;
    peakDecisionsPerSecondServer: number | null;
    /**
     * Decisions per second over the whole seconds in which the queue never ran empty: what the
     * workers can do when they are not waiting for requests to arrive. null without both the
     * database and the Redis queue depth.
     */
    decisionsPerSecondBacklogged: number | null;
  };
  acceptLatencyMs: LatencySummary;
  timeToDecisionMs: { observedByPolling: LatencySummary; server: LatencySummary | null };
  pollLagMs: LatencySummary;
  /** Open loop (ramp, rate): how late the generator sent each request after it was due (its own lag, inside accept latency); null in a burst. */
  sendLagMs: LatencySummary | null;
  /**
   * Status requests sent (answered or not) and per accepted booking: with Prefer: wait, about
   * one per booking is the goal (waitSeconds 0: plain polling).
   */
  polls: { total: number; perBooking: number; waitSeconds: number };
  outcomes: Record<string, number>;
  /** With --waitlist-ratio and a database: the requests that joined a waiting list, and their offers. */
  waitlist: WaitlistFigures | null;
  settle: { confirmed: number; cancelled: number; leftToLapse: number; rejected: Record<string, number> };
  http: Record<string, Record<string, number>>;
  retried: Record<string, number>;
  errors: Record<string, number>;
  /** 5xx answers other than retried 503s. */
  serverErrors: number;
  generator: { cpuUserMs: number; cpuSystemMs: number; cpuPercentOfOneCore: number };
  queueDepthSource: 'redis' | 'api-positions';
  timeline: Sample[];
  serverTimeline: Array<{ t: number; decided: number }> | null;
  histograms: { acceptLatency: LatencyBucket[]; timeToDecisionObserved: LatencyBucket[]; timeToDecisionServer: LatencyBucket[] | null };
  audit: AuditReport | null;
  /** A scheduled sale's opening (--sales-open-in); null otherwise, or without a database. */
  opening: OpeningReport | null;
  /** The drain (bench scenario drain: workers started once every request was accepted); null otherwise, or without a database. */
  drain: DrainReport | null;
  verdict: 'pass' | 'fail' | 'not-audited';
  /** Request ids accepted (for the audit); kept out of the JSON file unless asked for. */
  acceptedIds?: string[];
};

export type DrainReport = {
  /** When the workers were started (their processes spawned), every request accepted by then. */
  workersStartedAt: string;
  /** Decisions recorded before that (database decided_at): the premise needs 0. */
  decidedBeforeWorkers: number;
  /** From the workers' start to the first decision: process start-up and their first batch. */
  startToFirstDecisionMs: number;
  /** From the first decision to the last (database decided_at). */
  firstToLastDecisionMs: number;
  /** Decisions over that span: the workers' rate with the whole queue ahead of them. */
  decisionsPerSecond: number;
};

const fmt = (value: number, digits = 1) => value.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: 0 });
const latencyLine = (name: string, s: LatencySummary) =>
  `${name.padEnd(32)} p50 ${fmt(s.p50)} ms  p95 ${fmt(s.p95)} ms  p99 ${fmt(s.p99)} ms  max ${fmt(s.max)} ms  (n=${s.count})`;

function table(record: Record<string, number>): string {
  return Object.entries(record)
    .map(([key, value]) => `${key}=${value}`)
    .join('  ') || '-';
}

/**
 * The rate limit counts per client address, and the burst tool is one client: against an API
 * with its default limit the run measures the limiter, not the pipeline.
 */
export function rateLimitWarning(report: Pick<BurstReport, 'rateLimited'>): string[] {
  if (report.rateLimited === 0) return [];
  const bar = '!'.repeat(78);
  return [
    bar,
    `WARNING: the API rate-limited this run: ${report.rateLimited.toLocaleString('en-US')} answer(s) were 429 Too Many Requests.`,
    'The limit (RATE_LIMIT_PER_MINUTE) applies per client address and this tool is one client, so',
    'rates and times below measure the limiter, not the pipeline. For a local burst, start the API',
    'under test with RATE_LIMIT_PER_MINUTE=0 (off) or a higher limit, e.g. RATE_LIMIT_PER_MINUTE=0 npm start.',
    bar,
  ];
}

export function formatReport(report: BurstReport): string {
  const lines: string[] = [];
  const r = report.requests;
  lines.push('');
  lines.push(...rateLimitWarning(report));
  lines.push(`Burst of ${r.planned} request(s) on ${report.shows.length} show(s), ${report.options.concurrency} in flight, arrival ${report.options.arrival.kind}`);
  lines.push(`  submitted ${r.submitted}  accepted ${r.accepted}  not accepted ${r.notAccepted}  decided ${r.decided}  lapsed unseen ${r.lapsedUnseen}  undecided ${r.undecided}  in ${fmt(report.durationSeconds)} s`);
  lines.push('');
  lines.push(`Accepted per second              ${fmt(report.rates.acceptedPerSecond)}`);
  lines.push(latencyLine('Accept latency', report.acceptLatencyMs));
  if (report.sendLagMs) lines.push(latencyLine('  of which the generator sent late', report.sendLagMs));
  lines.push(`Decisions per second (database)  ${report.rates.decisionsPerSecondServer === null ? 'n/a' : fmt(report.rates.decisionsPerSecondServer)}` +
    (report.rates.peakDecisionsPerSecondServer === null ? '' : `  (peak second ${report.rates.peakDecisionsPerSecondServer})`));
  if (report.rates.decisionsPerSecondBacklogged !== null) {
    lines.push(`Decisions per second, queue never empty  ${fmt(report.rates.decisionsPerSecondBacklogged)}`);
  }
  lines.push(`Decisions per second (polled)    ${fmt(report.rates.decisionsPerSecondObserved)}`);
  if (report.drain) {
    const d = report.drain;
    lines.push(`Drain: ${fmt(d.decisionsPerSecond)} decisions/s from the first decision to the last (${fmt(d.firstToLastDecisionMs / 1_000, 2)} s), ` +
      `first ${fmt(d.startToFirstDecisionMs / 1_000, 2)} s after the workers started; decided before them: ${d.decidedBeforeWorkers}`);
  }
  if (report.timeToDecisionMs.server) lines.push(latencyLine('Time to decision (database)', report.timeToDecisionMs.server));
  lines.push(latencyLine('Time to decision (polled)', report.timeToDecisionMs.observedByPolling));
  lines.push(latencyLine('Poll lag (generator)', report.pollLagMs));
  const polls = report.polls;
  lines.push(`Status polls per booking         ${fmt(polls.perBooking, 2)}  (${polls.total} polls; ${polls.waitSeconds > 0 ? `Prefer: wait=${polls.waitSeconds}` : 'plain polling'})`);
  lines.push('');
  lines.push(`Outcomes        ${table(report.outcomes)}`);
  if (report.waitlist) {
    const w = report.waitlist;
    const offered = Object.values(w.offers).reduce((sum, n) => sum + n, 0);
    lines.push(`Waiting list    joined=${w.joined}  still waiting=${w.waiting}  offered=${offered} (${table(w.offers)})  left without an offer: ${table(w.leftWithoutOffer)}`);
  }
  lines.push(`Settled         confirmed=${report.settle.confirmed}  cancelled=${report.settle.cancelled}  left to lapse=${report.settle.leftToLapse}  rejected: ${table(report.settle.rejected)}`);
  for (const [kind, codes] of Object.entries(report.http)) {
    if (Object.keys(codes).length > 0) lines.push(`HTTP ${kind.padEnd(10)} ${table(codes)}`);
  }
  lines.push(`Retried         ${table(report.retried)}   (429/503 honoured with Retry-After; not errors)`);
  lines.push(`Errors          ${table(report.errors)}`);
  lines.push(`429 (rate limited): ${report.rateLimited}`);
  lines.push(`5xx (not retried 503s): ${report.serverErrors}`);
  const g = report.generator;
  lines.push(`Generator CPU   ${fmt(g.cpuUserMs / 1_000, 2)} s user + ${fmt(g.cpuSystemMs / 1_000, 2)} s system = ${fmt(g.cpuPercentOfOneCore)}% of one core over the run`);
  lines.push(`Queue depth from ${report.queueDepthSource === 'redis' ? 'requests waiting in Redis (request index)' : 'queue positions reported by the API (estimate)'}; max ${Math.max(0, ...report.timeline.map((s) => s.queueDepth ?? 0))}`);
  lines.push('');
  if (report.opening) lines.push(formatOpening(report.opening), '');
  lines.push(report.audit ? formatAudit(report.audit) : 'Audit: not run (--no-audit)');
  // Again at the end, where a reader of a long report looks first.
  const warning = rateLimitWarning(report);
  if (warning.length > 0) lines.push('', ...warning);
  return lines.join('\n');
}
