import type { Arrival, SectionSpec } from './options.js';
import { spreadOverWait } from './sale-opening.js';

/**
 * The standard scenarios of issue 3, (a) to (c), and (d): the hot show of (a) offered at a
 * steady rate the machine sustains, which shows the accept latency a client sees when the
 * pipeline is not driven past its capacity (a closed loop of 500 always is: its latency is
 * 500 ÷ throughput). (e) is issue 13's opening: the buyers of (a) arrive in the waiting room of
 * a show whose sale opens while they wait, and the draw decides their order. `drain` is issue
 * 16's: the requests of (a) all queued while no worker runs, then the workers start and empty
 * the queue, so the decision rate is the workers' alone, never waiting for requests to arrive
 * (group commit: a batch of the show's requests decided in one transaction). `quick` divides
 * every size by ten, for smoke tests.
 */

export type ScenarioName = 'a' | 'b' | 'c' | 'd' | 'e' | 'drain';

export const SCENARIO_NAMES: readonly ScenarioName[] = ['a', 'b', 'c', 'd', 'e', 'drain'];

/** The drain's target (issue 16): decisions per second, first to last, at least this many times pgbench -N's TPS. */
export const DRAIN_TARGET_PGBENCH_RATIO = 3;

/** Scenario (e)'s wait from the show's creation to its opening: the buyers arrive during it. */
const OPENING_IN_SECONDS = 30;

/**
 * Issue 16's open loop, scenario (d): this many requests per second offered for this long
 * (`--rate` offers another, to find the rate at which a machine meets the latencies), and the
 * accept and decision p99 it must stay within, with zero 5xx.
 */
export const OPEN_LOOP_TARGET = { perSecond: 3_000, seconds: 20, acceptP99Ms: 50, decisionP99Ms: 1_000 } as const;

export type Scenario = {
  name: ScenarioName;
  title: string;
  description: string;
  requests: number;
  inFlight: number;
  arrival: Arrival;
  shows: { count: number; seats: number } | { count: number; sections: SectionSpec[] };
  seatCount: { min: number; max: number };
  specificSeatsRatio: number;
  confirmRatio: number;
  cancelShare: number;
  /** A scheduled sale: the show opens this long after its creation, the requests wait in its waiting room. */
  salesOpenInSeconds?: number;
  /** The drain: the services start without workers, which start once every request is accepted. */
  workersAfterAccepting?: boolean;
};

/** `steadyRate`: scenario (d)'s offered rate per second; it lasts OPEN_LOOP_TARGET.seconds (a tenth of that with `quick`). */
export function scenarios(quick: boolean, steadyRate: number = OPEN_LOOP_TARGET.perSecond): Record<ScenarioName, Scenario> {
  const scale = (n: number) => (quick ? Math.max(1, Math.round(n / 10)) : n);
  const steadySeconds = quick ? OPEN_LOOP_TARGET.seconds / 10 : OPEN_LOOP_TARGET.seconds;
  const hot: Scenario = {
    name: 'a',
    title: 'hot show',
    description: `${scale(20_000).toLocaleString('en-US')} single-seat requests, all at once with ${scale(500)} in flight, on ${scale(5_000).toLocaleString('en-US')} seats; holds left in place`,
    requests: scale(20_000),
    inFlight: scale(500),
    arrival: { kind: 'burst' },
    shows: { count: 1, seats: scale(5_000) },
    seatCount: { min: 1, max: 1 },
    specificSeatsRatio: 0,
    confirmRatio: 0,
    cancelShare: 0,
  };
  return {
    a: hot,
    b: {
      name: 'b',
      title: 'mixed',
      description: `${scale(10_000).toLocaleString('en-US')} requests of 1-4 seats, 30% naming specific seats, on ${scale(3_000).toLocaleString('en-US')} reserved seats in 3 sections; 70% of holds confirmed, of the rest half cancelled, half left to lapse`,
      requests: scale(10_000),
      inFlight: scale(500),
      arrival: { kind: 'burst' },
      // 3,000 seats: VIP 10x20, Floor 40x50, Balcony 20x40 (a tenth of the rows when quick).
      shows: {
        count: 1,
        sections: [
          { name: 'VIP', rows: scale(10), seatsPerRow: 20, priceCents: 15_000 },
          { name: 'Floor', rows: scale(40), seatsPerRow: 50, priceCents: 8_000 },
          { name: 'Balcony', rows: scale(20), seatsPerRow: 40, priceCents: 4_000 },
        ],
      },
      seatCount: { min: 1, max: 4 },
      specificSeatsRatio: 0.3,
      confirmRatio: 0.7,
      cancelShare: 0.5,
    },
    c: {
      name: 'c',
      title: 'many shows',
      description: `20 shows of ${scale(500)} seats, ${scale(20_000).toLocaleString('en-US')} single-seat requests spread evenly, ${scale(500)} in flight; holds left in place`,
      requests: scale(20_000),
      inFlight: scale(500),
      arrival: { kind: 'burst' },
      shows: { count: 20, seats: scale(500) },
      seatCount: { min: 1, max: 1 },
      specificSeatsRatio: 0,
      confirmRatio: 0,
      cancelShare: 0,
    },
    d: {
      ...hot,
      name: 'd',
      title: 'steady rush',
      description: `the hot show of (a) (${scale(5_000).toLocaleString('en-US')} seats), single-seat requests arriving open-loop at ${steadyRate.toLocaleString('en-US')} per second for ${steadySeconds} s (${(steadyRate * steadySeconds).toLocaleString('en-US')} requests, at most ${scale(500)} in flight); accept latency counted from each request's scheduled time`,
      requests: steadyRate * steadySeconds,
      // The rate is not scaled down with --quick (a tenth of it would not be a rush); its length is.
      arrival: { kind: 'rate', perSecond: steadyRate },
    },
    e: {
      name: 'e',
      title: 'scheduled opening',
      description: `${scale(20_000).toLocaleString('en-US')} buyers join the waiting room of a ${scale(5_000).toLocaleString('en-US')}-seat show over the ${OPENING_IN_SECONDS} s before its sale opens (at most ${scale(500)} in flight), single seats; at the opening the room is drawn and decided in draw order; holds left in place`,
      requests: scale(20_000),
      inFlight: scale(500),
      arrival: spreadOverWait(scale(20_000), OPENING_IN_SECONDS),
      shows: { count: 1, seats: scale(5_000) },
      seatCount: { min: 1, max: 1 },
      specificSeatsRatio: 0,
      confirmRatio: 0,
      cancelShare: 0,
      salesOpenInSeconds: OPENING_IN_SECONDS,
    },
    drain: {
      ...hot,
      name: 'drain',
      title: 'drain',
      description: `the requests of (a) (${scale(20_000).toLocaleString('en-US')} single-seat requests on ${scale(5_000).toLocaleString('en-US')} seats, ${scale(500)} in flight) all queued while no worker runs; then the workers start; decisions/s from the first decision to the last; holds left in place`,
      workersAfterAccepting: true,
    },
  };
}
