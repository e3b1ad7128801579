import { setTimeout as delay } from 'node:timers/promises';
import type { HttpClient } from './http.js';
import type { Arrival } from './options.js';

/**
 * The burst of a scheduled sale (`npm run burst -- --sales-open-in SECONDS`): the show is
 * created with its opening that far ahead, the requests go into its waiting room, and after
 * the opening the run fetches the published draw (GET /shows/:id/draw) for the audit
 * (audit.ts, auditOpening), which recomputes it on its own.
 */

export type SaleOpeningOptions = {
  /** Seconds from the show's creation to its sales_open_at. */
  opensInSeconds: number;
  /** Overtakes the audit tolerates (see audit.ts); 0, the aim, by default. */
  maxOvertakes: number;
};

/** What a show published before anyone joined its waiting room. */
export type ShowOpening = { showId: string; salesOpenAt: string; seedSha256: string };

/** GET /shows/:id/draw once drawn (issue 13). */
export type PublishedDraw = { seed_sha256: string; seed: string; drawn_at: string; entries: number; keys: string[] };

/**
 * `--arrival wait`: the requests spread evenly over the wait, ending a fifth of it (at least a
 * second) before the opening, so that a generator that falls a little behind still lands its
 * requests in the waiting room.
 */
export function spreadOverWait(requests: number, opensInSeconds: number): Arrival {
  const seconds = Math.max(0.001, opensInSeconds - Math.max(1, opensInSeconds / 5));
  return { kind: 'rate', perSecond: requests / seconds };
}

/** Polls GET /shows/:id/draw until the draw is published (409 NOT_DRAWN_YET before), or the deadline. */
export async function fetchDraw(http: HttpClient, showId: string, deadlineMs: number): Promise<PublishedDraw> {
  for (;;) {
    const answer = await http.send('GET', `/shows/${showId}/draw`);
    if (answer.status === 200) return answer.body as PublishedDraw;
    if (answer.status !== 409 && answer.status !== 503) {
      throw new Error(`GET /shows/${showId}/draw answered ${answer.status}: ${JSON.stringify(answer.body)}`);
    }
    if (Date.now() >= deadlineMs) throw new Error(`show ${showId}: no draw published by ${new Date(deadlineMs).toISOString()}`);
    await delay(250);
  }
}

/** The report's part about the opening (figures from Postgres and the draw; the checks are the audit's). */
export type OpeningReport = {
  salesOpenAt: string;
  /** Entries of the published draw: requests accepted into the waiting room before the opening. */
  waitingRoom: number;
  /** Accepted requests the generator saw answered before the opening, and after it (late arrivals). */
  acceptedBeforeOpening: number;
  acceptedAfterOpening: number;
  drawnAt: string | null;
  /** From sales_open_at to the first and the last decision (Postgres decided_at). */
  openingToFirstDecisionMs: number | null;
  openingToLastDecisionMs: number | null;
  overtakes: number;
  /** Refused entries some later entry overtook. */
  overtaken: number;
  maxOvertakes: number;
};

export function formatOpening(opening: OpeningReport): string {
  const ms = (value: number | null) => (value === null ? 'n/a' : `${Math.round(value).toLocaleString('en-US')} ms`);
  const n = (value: number) => value.toLocaleString('en-US');
  return [
    `Scheduled sale: opened ${opening.salesOpenAt}${opening.drawnAt ? `, drawn ${opening.drawnAt}` : ''}`,
    `  waiting room   ${n(opening.waitingRoom)} entries in the draw (${n(opening.acceptedBeforeOpening)} accepted before the opening, ${n(opening.acceptedAfterOpening)} after)`,
    `  opening →      first decision ${ms(opening.openingToFirstDecisionMs)}, last decision ${ms(opening.openingToLastDecisionMs)}`,
    `  overtakes      ${n(opening.overtakes)} pair(s), ${n(opening.overtaken)} entr(ies) overtaken (bound ${n(opening.maxOvertakes)} pairs)`,
  ].join('\n');
}
