/**
 * Booking events a webhook can subscribe to: the one list. The outbox table's CHECK, the
 * webhooks' `events` CHECK, the admin API's schemas and the writers all take it from here.
 */
export const BOOKING_EVENT_TYPES = [
  'booking.held',
  'booking.failed',
  'booking.confirmed',
  'booking.cancelled',
  'booking.expired',
  'booking.waitlisted',
  'booking.refunded',
] as const;
export type BookingEventType = (typeof BOOKING_EVENT_TYPES)[number];

/**
 * Where one delivery (an event to one webhook) stands: PENDING until a 2xx answer
 * (DELIVERED) or until retries ran out (FAILED).
 */
export const DELIVERY_STATUSES = ['PENDING', 'DELIVERED', 'FAILED'] as const;
export type DeliveryStatus = (typeof DELIVERY_STATUSES)[number];
