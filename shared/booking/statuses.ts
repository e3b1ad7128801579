/**
 * Booking lifecycle:
 *   QUEUED → HELD → CONFIRMED
 *   QUEUED → FAILED            (SOLD_OUT, SEATS_UNAVAILABLE, LIMIT_EXCEEDED; PROCESSING_ERROR when retries ran out)
 *   HELD   → EXPIRED | CANCELLED | FAILED (PAYMENT_FAILED)
 * QUEUED lives only in Redis (the job); every later status lives in Postgres.
 */
export const BOOKING_STATUSES = ['QUEUED', 'HELD', 'CONFIRMED', 'FAILED', 'EXPIRED', 'CANCELLED'] as const;
export type BookingStatus = (typeof BOOKING_STATUSES)[number];
export type DecidedStatus = Exclude<BookingStatus, 'QUEUED'>;

export const FAILURE_REASONS = [
  'SOLD_OUT',
  'SEATS_UNAVAILABLE',
  'LIMIT_EXCEEDED',
  'PAYMENT_FAILED',
  'PROCESSING_ERROR',
] as const;
export type FailureReason = (typeof FAILURE_REASONS)[number];

/** Statuses from which nothing moves any more. */
export const FINAL_STATUSES: ReadonlySet<BookingStatus> = new Set(['CONFIRMED', 'FAILED', 'EXPIRED', 'CANCELLED']);

export const SEAT_STATUSES = ['AVAILABLE', 'HELD', 'BOOKED'] as const;
export type SeatStatus = (typeof SEAT_STATUSES)[number];
