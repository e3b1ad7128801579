/**
 * Booking lifecycle:
 *   QUEUED → HELD → CONFIRMED → REFUNDED (an operator's simulated refund; its seats are freed)
 *   QUEUED → FAILED            (SOLD_OUT, SEATS_UNAVAILABLE, LIMIT_EXCEEDED; PROCESSING_ERROR when retries ran out)
 *   HELD   → EXPIRED | CANCELLED | FAILED (PAYMENT_FAILED)
 *   QUEUED → WAITLISTED        (asked for `waitlist` and would have failed SOLD_OUT; holds no seat)
 *   WAITLISTED → HELD          (an offer: freed seats given to it, shared/booking/waitlist.ts)
 *   WAITLISTED → CANCELLED | FAILED (SOLD_OUT: the list closed, by an operator or at the show's start)
 *   QUEUED → FAILED            (REQUEST_REMOVED: its queue job was removed before a decision;
 *                               only polls say so, nothing reaches Postgres)
 * QUEUED lives only in Redis (the job); every later status lives in Postgres.
 */
/** The statuses a booking row can have in Postgres (shared/db/schema/bookings.ts). */
export const DECIDED_STATUSES = ['HELD', 'CONFIRMED', 'FAILED', 'EXPIRED', 'CANCELLED', 'WAITLISTED', 'REFUNDED'] as const;
export type DecidedStatus = (typeof DECIDED_STATUSES)[number];

export const BOOKING_STATUSES = ['QUEUED', ...DECIDED_STATUSES] as const;
export type BookingStatus = (typeof BOOKING_STATUSES)[number];

/**
 * Statuses a booking never leaves: live streams send them last, then close. (A CONFIRMED one
 * can still be refunded by an operator; a buyer's stream ends at CONFIRMED all the same.)
 */
export const FINAL_STATUSES = ['CONFIRMED', 'FAILED', 'EXPIRED', 'CANCELLED', 'REFUNDED'] as const satisfies readonly BookingStatus[];
export const isFinal = (status: BookingStatus): boolean => (FINAL_STATUSES as readonly BookingStatus[]).includes(status);

export const FAILURE_REASONS = [
  'SOLD_OUT',
  'SEATS_UNAVAILABLE',
  'LIMIT_EXCEEDED',
  'PAYMENT_FAILED',
  'PROCESSING_ERROR',
  'REQUEST_REMOVED',
] as const;
export type FailureReason = (typeof FAILURE_REASONS)[number];

/** A seat's status (shared/db/schema/seats.ts): BOOKED once its booking is CONFIRMED. */
export const SEAT_STATUSES = ['AVAILABLE', 'HELD', 'BOOKED'] as const;
export type SeatStatus = (typeof SEAT_STATUSES)[number];
