import type { Config } from '../config.js';
import type { DecideSettings } from './decide.js';

/**
 * A show's sale schedule, the one home of its rules: when requests are taken (from the waiting
 * room's opening until the sale closes), the order the times must keep, the defaults of a show
 * created without them, the per-show overrides of the environment's settings, and the
 * `sales_state` every show view carries.
 */

export const SALES_STATES = ['SCHEDULED', 'WAITING_ROOM', 'ON_SALE', 'PAUSED', 'SOLD_OUT', 'CLOSED'] as const;
export type SalesState = (typeof SALES_STATES)[number];

export type SaleSchedule = {
  waitingRoomOpensAt: Date;
  salesOpenAt: Date;
  salesCloseAt: Date;
};

/** The schedule's fields as the API names them, for errors that name the field at fault. */
export const SCHEDULE_FIELDS = {
  waitingRoomOpensAt: 'waiting_room_opens_at',
  salesOpenAt: 'sales_open_at',
  salesCloseAt: 'sales_close_at',
} as const satisfies Record<keyof SaleSchedule, string>;

/**
 * What a show created without some of its times gets: on sale at once (its creation), the
 * waiting room open from then (so none unless the opening is later), closing when the show
 * starts. A show created after its start (an archive entry) opens a second before it, so the
 * order `waiting room ≤ opening < close` holds for every show (CHECK shows_sale_schedule_order;
 * migration 0006 fills older shows the same way).
 */
export function scheduleWithDefaults(
  given: Partial<SaleSchedule>,
  startTime: Date,
  now: Date,
): SaleSchedule {
  const salesCloseAt = given.salesCloseAt ?? startTime;
  const salesOpenAt = given.salesOpenAt ?? new Date(Math.min(now.getTime(), salesCloseAt.getTime() - 1_000));
  const waitingRoomOpensAt = given.waitingRoomOpensAt ?? new Date(Math.min(now.getTime(), salesOpenAt.getTime()));
  return { waitingRoomOpensAt, salesOpenAt, salesCloseAt };
}

export type ScheduleProblem = { field: string; problem: string };

/**
 * The first way a schedule breaks `waiting_room_opens_at ≤ sales_open_at < sales_close_at`, named
 * by the field to change (the later one given of the pair, or the one that was given at all);
 * null when it holds. `given` says which fields the caller set, so a default is not blamed.
 */
export function scheduleOrderProblem(schedule: SaleSchedule, given: Partial<Record<keyof SaleSchedule, unknown>>): ScheduleProblem | null {
  const at = (time: Date) => time.toISOString();
  if (schedule.waitingRoomOpensAt.getTime() > schedule.salesOpenAt.getTime()) {
    const field = given.waitingRoomOpensAt !== undefined ? SCHEDULE_FIELDS.waitingRoomOpensAt : SCHEDULE_FIELDS.salesOpenAt;
    return field === SCHEDULE_FIELDS.waitingRoomOpensAt
      ? { field, problem: `must not be after sales_open_at (${at(schedule.salesOpenAt)})` }
      : { field, problem: `must not be before waiting_room_opens_at (${at(schedule.waitingRoomOpensAt)})` };
  }
  if (schedule.salesOpenAt.getTime() >= schedule.salesCloseAt.getTime()) {
    const field = given.salesOpenAt !== undefined ? SCHEDULE_FIELDS.salesOpenAt : SCHEDULE_FIELDS.salesCloseAt;
    return field === SCHEDULE_FIELDS.salesOpenAt
      ? { field, problem: `must be before sales_close_at (${at(schedule.salesCloseAt)}${given.salesCloseAt === undefined ? ', by default the start_time' : ''})` }
      : { field, problem: `must be after sales_open_at (${at(schedule.salesOpenAt)})` };
  }
  return null;
}

/** Why a request cannot join the line now, or null when it can (between the waiting room's opening and the close). */
export type IntakeRefusal = { code: 'SALE_NOT_OPEN' | 'SALE_CLOSED'; at: Date };

export function intakeRefusal(schedule: SaleSchedule, now: Date): IntakeRefusal | null {
  if (now.getTime() < schedule.waitingRoomOpensAt.getTime()) return { code: 'SALE_NOT_OPEN', at: schedule.waitingRoomOpensAt };
  if (now.getTime() >= schedule.salesCloseAt.getTime()) return { code: 'SALE_CLOSED', at: schedule.salesCloseAt };
  return null;
}

/** The facts sales_state is computed from. */
export type SaleFacts = SaleSchedule & {
  pausedAt: Date | null;
  /** Seats AVAILABLE or HELD: none left means every seat is BOOKED. */
  unsoldSeats: number;
};

/**
 * The one computation of a show's sales_state. Closed and not-yet-open come from the clock
 * alone; a sold-out show says so before a pause does (nothing is left to resume for).
 */
export function salesState(show: SaleFacts, now: Date): SalesState {
  const time = now.getTime();
  if (time < show.waitingRoomOpensAt.getTime()) return 'SCHEDULED';
  if (time >= show.salesCloseAt.getTime()) return 'CLOSED';
  if (show.unsoldSeats === 0) return 'SOLD_OUT';
  if (show.pausedAt) return 'PAUSED';
  if (time < show.salesOpenAt.getTime()) return 'WAITING_ROOM';
  return 'ON_SALE';
}

/** A show's overrides of the environment's decision settings (null: the environment's). */
export type SaleOverrides = { holdSeconds: number | null; maxSeatsPerCustomer: number | null; waitlistOfferSeconds: number | null };

/** The settings a show's requests are decided with: its overrides, else the environment's. */
export function effectiveSettings(overrides: SaleOverrides, defaults: DecideSettings): DecideSettings {
  return {
    holdSeconds: overrides.holdSeconds ?? defaults.holdSeconds,
    maxSeatsPerCustomer: overrides.maxSeatsPerCustomer ?? defaults.maxSeatsPerCustomer,
    // The SQL that makes offers (shared/booking/sql/waitlist.ts) applies the same override itself.
    waitlistOfferSeconds: overrides.waitlistOfferSeconds ?? defaults.waitlistOfferSeconds,
  };
}

/** The environment's decision settings, what a show without overrides is decided with. */
export const environmentSettings = (config: Pick<Config, 'HOLD_SECONDS' | 'MAX_SEATS_PER_CUSTOMER' | 'WAITLIST_OFFER_SECONDS'>): DecideSettings => ({
  holdSeconds: config.HOLD_SECONDS,
  maxSeatsPerCustomer: config.MAX_SEATS_PER_CUSTOMER,
  waitlistOfferSeconds: config.WAITLIST_OFFER_SECONDS,
});
