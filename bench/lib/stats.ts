import { Latency } from './latency.js';

/**
 * Everything the generator counts while it runs. Plain counters and maps keyed by short
 * strings: recording a request is a few increments, never an allocation per request.
 */

export type TrafficKind = 'submit' | 'poll' | 'confirm' | 'cancel';

export class Tally {
  readonly counts = new Map<string, number>();

  add(key: string, by = 1): void {
    this.counts.set(key, (this.counts.get(key) ?? 0) + by);
  }

  get(key: string): number {
    return this.counts.get(key) ?? 0;
  }

  toJSON(): Record<string, number> {
    return Object.fromEntries([...this.counts.entries()].sort(([a], [b]) => a.localeCompare(b)));
  }
}

export type Sample = {
  /** Seconds since the first request was sent. */
  t: number;
  submitted: number;
  accepted: number;
  decided: number;
  confirmed: number;
  /** Requests waiting in the queue (see queueDepthSource); null when unknown. */
  queueDepth: number | null;
  /** Jobs being processed by workers, when read from Redis. */
  active: number | null;
  inFlight: number;
  pollBacklog: number;
  /** 429 answers so far, of every kind. */
  rateLimited: number;
  /** The accept latency p99 of the 202s answered since the previous sample (ms); null when none were. */
  acceptP99Ms: number | null;
  /** Open loop: how late the generator sent the requests it sent since the previous sample, p99 (ms); null when none. */
  sendLagP99Ms: number | null;
};

export class RunStats {
  /** performance.now() of the first request sent; 0 until then. */
  startedAt = 0;
  lastAcceptedAt = 0;
  lastDecidedAt = 0;

  submitted = 0;
  accepted = 0;
  /** Booking requests that ended without a 202 (4xx other than 429, 5xx, retries exhausted, network). */
  notAccepted = 0;
  decided = 0;
  /**
   * Holds already EXPIRED when first seen: their decision was never observed (polls came too
   * late, e.g. throttled by a rate limit), so they are not decisions and have no latency.
   */
  lapsedUnseen = 0;
  confirmed = 0;
  cancelled = 0;
  leftToLapse = 0;
  inFlight = 0;

  /** HTTP answers by traffic kind and status code. */
  readonly http: Record<TrafficKind, Tally> = { submit: new Tally(), poll: new Tally(), confirm: new Tally(), cancel: new Tally() };
  /** 429/503 answers that were retried after Retry-After (they are also in `http`). */
  readonly retried = new Tally();
  /** Failures without an HTTP answer, and answers the tool did not expect, by kind:reason. */
  readonly errors = new Tally();
  /** Decisions seen by polling, as STATUS or STATUS:REASON. */
  readonly outcomes = new Tally();
  /** Confirm/cancel answers other than 200, by kind:code (e.g. confirm:HOLD_EXPIRED). */
  readonly settleRejected = new Tally();

  readonly acceptLatency = new Latency();
  /** The accept latencies since the last timeline sample, for its p99 (then cleared). */
  readonly recentAccepts: number[] = [];
  /** The send lags since the last timeline sample, likewise. */
  readonly recentSendLags: number[] = [];
  /**
   * Open loop: how late each request went out compared with when it was due, the generator's
   * own lag. Accept latency counts from the due time, so this part of it is the tool's, not the API's.
   */
  readonly sendLag = new Latency();
  /** Submit (the attempt that got the 202) to the poll that first saw HELD or FAILED. */
  readonly decisionLatency = new Latency();
  /** How late polls went out compared with when they were due (the generator's own lag). */
  readonly pollLag = new Latency();

  /** Queue positions reported by the API since the last sample: the depth estimate without Redis. */
  latestAcceptPosition: number | null = null;
  latestPollPosition: number | null = null;

  readonly timeline: Sample[] = [];
  /** Every id the API accepted, for the audit. */
  readonly acceptedIds: string[] = [];

  /** 429 answers so far, of every kind: the API's per-client rate limit is throttling the run. */
  rateLimited(): number {
    return Object.values(this.http).reduce((sum, tally) => sum + tally.get('429'), 0);
  }
}
