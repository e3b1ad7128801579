import type { Booking } from '../db/schema/index.js';
import type { BookingStatus } from './statuses.js';

/** A booking as clients see it (snake_case, ISO timestamps). */
export type BookingView = {
  id: string;
  show_id: string;
  customer_email: string;
  status: BookingStatus;
  reason: string | null;
  seat_count: number;
  section: string | null;
  requested_seats: string[] | null;
  seats: string[];
  /** Price of the seats it holds or held; 0 if it never got seats; null while QUEUED (not yet decided). */
  total_cents: number | null;
  hold_expires_at: string | null;
  accepted_at: string;
  decided_at: string | null;
  confirmed_at: string | null;
  updated_at: string;
  /** The booking joined the show's waiting list: while WAITLISTED it waits there; a HELD one is an offer from it. */
  from_waitlist: boolean;
  /** Its place on the waiting list, 1 = next; only while WAITLISTED (shared/booking/standing.ts adds it). */
  waitlist_position?: number;
};

const iso = (value: Date | null) => (value ? value.toISOString() : null);

/**
 * "ada@example.com" → "a***@example.com". A booking id is a bearer of sorts (anyone holding
 * the status URL can read it), so public reads show only enough for the buyer to recognise
 * their own address; the length of the local part is not revealed either.
 */
export function maskEmail(email: string): string {
  const at = email.lastIndexOf('@');
  if (at <= 0) return '***';
  return `${email.slice(0, 1)}***${email.slice(at)}`;
}

/** The view anyone with the booking id may read: the email masked. Admin reads use bookingView as is. */
export function publicBookingView<T extends BookingView>(view: T): T {
  return { ...view, customer_email: maskEmail(view.customer_email) };
}

export function bookingView(booking: Booking): BookingView {
  return {
    id: booking.id,
    show_id: booking.showId,
    customer_email: booking.customerEmail,
    status: booking.status,
    reason: booking.failureReason,
    seat_count: booking.seatCount,
    section: booking.requestedSection,
    requested_seats: booking.requestedSeats,
    seats: booking.seatLabels,
    total_cents: booking.totalCents,
    hold_expires_at: booking.status === 'HELD' ? iso(booking.holdExpiresAt) : null,
    accepted_at: booking.acceptedAt.toISOString(),
    decided_at: iso(booking.decidedAt),
    confirmed_at: iso(booking.confirmedAt),
    updated_at: booking.updatedAt.toISOString(),
    from_waitlist: booking.waitlistedAt !== null,
  };
}
