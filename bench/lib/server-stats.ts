import { Latency, type LatencyBucket, type LatencySummary } from './latency.js';
import type { Queryable } from './audit.js';

/**
 * The decision timings as the database recorded them: accepted_at is stamped by the API when
 * it enqueues, decided_at by the worker's transaction. Unlike the polled figures these do not
 * depend on how often the generator polls, so they are the precise time to decision and the
 * true decision rate.
 */

export type ServerTimings = {
  decided: number;
  /** Decisions per second from the first acceptance to the last decision of the run. */
  decisionsPerSecond: number;
  /** The busiest whole second. */
  peakDecisionsPerSecond: number;
  firstAcceptedAtMs: number;
  firstDecidedAtMs: number;
  lastDecidedAtMs: number;
  timeToDecisionMs: LatencySummary;
  timeToDecisionHistogram: LatencyBucket[];
  /** Decisions per second over time, relative to `originMs`. */
  perSecond: Array<{ t: number; decided: number }>;
};

export async function readServerTimings(db: Queryable, acceptedIds: string[], originMs: number): Promise<ServerTimings | null> {
  if (acceptedIds.length === 0) return null;
  const { rows } = await db.query(
    `SELECT (extract(epoch FROM accepted_at) * 1000)::float8 AS accepted, (extract(epoch FROM decided_at) * 1000)::float8 AS decided
     FROM bookings WHERE id = ANY($1::uuid[])`,
    [acceptedIds],
  );
  if (rows.length === 0) return null;
  const latency = new Latency();
  const bins = new Map<number, number>();
  let first = Infinity;
  let firstDecided = Infinity;
  let last = -Infinity;
  for (const row of rows as Array<{ accepted: number; decided: number }>) {
    latency.record(Math.max(0, row.decided - row.accepted));
    first = Math.min(first, row.accepted);
    firstDecided = Math.min(firstDecided, row.decided);
    last = Math.max(last, row.decided);
    const second = Math.floor((row.decided - originMs) / 1_000);
    bins.set(second, (bins.get(second) ?? 0) + 1);
  }
  const seconds = [...bins.keys()];
  const from = Math.min(0, ...seconds);
  const to = Math.max(...seconds);
  const perSecond: Array<{ t: number; decided: number }> = [];
  for (let t = from; t <= to; t++) perSecond.push({ t, decided: bins.get(t) ?? 0 });
  const span = Math.max(0.001, (last - first) / 1_000);
  return {
    decided: rows.length,
    decisionsPerSecond: rows.length / span,
    peakDecisionsPerSecond: Math.max(...perSecond.map((bin) => bin.decided)),
    firstAcceptedAtMs: first,
    firstDecidedAtMs: firstDecided,
    lastDecidedAtMs: last,
    timeToDecisionMs: latency.summary(),
    timeToDecisionHistogram: latency.histogram(),
    perSecond,
  };
}
