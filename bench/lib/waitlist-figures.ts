import type { Queryable } from './audit.js';

/**
 * What became of a burst's requests that joined a waiting list (--waitlist-ratio), read from
 * Postgres after the run: the generator stops following a request at its first decision, and an
 * offer comes later, to a booking already counted WAITLISTED in the outcomes.
 */
export type WaitlistFigures = {
  /** Requests that joined a list (waitlisted_at set), whatever became of them. */
  joined: number;
  /** Still waiting when the run ended. */
  waiting: number;
  /** Got an offer (seats from the list): by the offer's status now (HELD, CONFIRMED, EXPIRED, ...). */
  offers: Record<string, number>;
  /** Left the list without an offer: CANCELLED, or FAILED SOLD_OUT when it closed. */
  leftWithoutOffer: Record<string, number>;
};

export async function waitlistFigures(db: Queryable, acceptedIds: string[]): Promise<WaitlistFigures> {
  const { rows } = await db.query(
    `SELECT status, cardinality(seat_ids) > 0 AS offered, count(*)::int AS n
     FROM bookings WHERE id = ANY($1::uuid[]) AND waitlisted_at IS NOT NULL
     GROUP BY 1, 2`,
    [acceptedIds],
  );
  const figures: WaitlistFigures = { joined: 0, waiting: 0, offers: {}, leftWithoutOffer: {} };
  for (const row of rows as Array<{ status: string; offered: boolean; n: number }>) {
    figures.joined += row.n;
    if (row.status === 'WAITLISTED') figures.waiting += row.n;
    else if (row.offered) figures.offers[row.status] = (figures.offers[row.status] ?? 0) + row.n;
    else figures.leftWithoutOffer[row.status] = (figures.leftWithoutOffer[row.status] ?? 0) + row.n;
  }
  return figures;
}
