import { eq } from 'drizzle-orm';
import type { Database } from '../db/client.js';
import { shows } from '../db/schema/index.js';
import { SCHEDULE_FIELDS, scheduleOrderProblem, type SaleOverrides, type SaleSchedule, type ScheduleProblem } from './sale-schedule.js';

/**
 * Changing a show after its creation (PATCH /admin/shows/:id): its name, its sale times and its
 * overrides. A time can only be moved while it is still ahead, to another time ahead: an
 * opening that has happened (a drawn waiting room, decisions made) cannot be undone by moving
 * it, nor a close by which requests were refused. The overrides apply from the next decision
 * (null puts the environment's value back).
 */

export type ShowChanges = {
  name?: string;
  schedule?: Partial<SaleSchedule>;
  overrides?: Partial<SaleOverrides>;
};

export type UpdateShowOutcome =
  | { kind: 'updated' }
  | { kind: 'not_found' }
  /** The time `field` would replace has passed (at `at`): the moment it marked has happened. */
  | { kind: 'time_passed'; field: string; at: Date }
  /** A new time not ahead, or a schedule breaking `waiting_room_opens_at ≤ sales_open_at < sales_close_at`. */
  | ({ kind: 'invalid' } & ScheduleProblem);

export async function updateShow(db: Database, showId: string, changes: ShowChanges, now: Date): Promise<UpdateShowOutcome> {
  return db.transaction(async (tx) => {
    // NO KEY UPDATE: bookings being written for the show (key-share locks on it) do not block
    // this, but a concurrent PATCH (or the draw, which locks the row the same way) does, so the
    // checks below see the times as they stay until commit.
    const [current] = await tx
      .select({ waitingRoomOpensAt: shows.waitingRoomOpensAt, salesOpenAt: shows.salesOpenAt, salesCloseAt: shows.salesCloseAt })
      .from(shows)
      .where(eq(shows.id, showId))
      .for('no key update');
    if (!current) return { kind: 'not_found' };

    const given = changes.schedule ?? {};
    for (const key of Object.keys(SCHEDULE_FIELDS) as (keyof SaleSchedule)[]) {
      const next = given[key];
      if (next === undefined) continue;
      const field = SCHEDULE_FIELDS[key];
      if (current[key].getTime() <= now.getTime()) return { kind: 'time_passed', field, at: current[key] };
      if (next.getTime() <= now.getTime()) return { kind: 'invalid', field, problem: `must be in the future (it is ${now.toISOString()} now)` };
    }
    const schedule = { ...current, ...given };
    const problem = scheduleOrderProblem(schedule, given);
    if (problem) return { kind: 'invalid', ...problem };

    const overrides = changes.overrides ?? {};
    const values = {
      ...(changes.name !== undefined ? { name: changes.name } : {}),
      ...given,
      ...(overrides.holdSeconds !== undefined ? { holdSeconds: overrides.holdSeconds } : {}),
      ...(overrides.maxSeatsPerCustomer !== undefined ? { maxSeatsPerCustomer: overrides.maxSeatsPerCustomer } : {}),
      ...(overrides.waitlistOfferSeconds !== undefined ? { waitlistOfferSeconds: overrides.waitlistOfferSeconds } : {}),
    };
    if (Object.keys(values).length > 0) await tx.update(shows).set(values).where(eq(shows.id, showId));
    return { kind: 'updated' };
  });
}
