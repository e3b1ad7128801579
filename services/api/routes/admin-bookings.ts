import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { findBookings } from '../../../shared/booking/find-bookings.js';
import { refundBooking } from '../../../shared/booking/settle.js';
import { bookingView } from '../../../shared/booking/view.js';
import type { AppDeps } from '../deps.js';
import { AppError, notFound } from '../errors.js';
import { decodeCursor, nextLink } from '../pagination.js';
import { AdminBookingList, AdminBookingQuery, BookingView, ErrorBody, IdParams } from '../schemas.js';

/** Finding bookings for support: full emails (admin only), newest first; refunds. */
export const adminBookingRoutes =
  (deps: Pick<AppDeps, 'db' | 'config' | 'changes'>): FastifyPluginAsyncZod =>
  async (app) => {
    app.get(
      '/admin/bookings',
      {
        schema: {
          summary: 'Find decided bookings by show, email and status, newest first, a page at a time',
          description: 'Emails in full. Requests still QUEUED live in the queue, not here: poll GET /booking/:id/status.',
          security: [{ adminToken: [] }],
          tags: ['admin'],
          querystring: AdminBookingQuery,
          response: { 200: AdminBookingList, 400: ErrorBody, 401: ErrorBody },
        },
      },
      async (request) => {
        const { show_id, email, status, limit, cursor } = request.query;
        const page = await findBookings(deps.db, {
          ...(show_id ? { showId: show_id } : {}),
          ...(email ? { email } : {}),
          ...(status ? { status } : {}),
          limit,
          after: cursor ? decodeCursor(cursor) : null,
        });
        return {
          bookings: page.items.map(bookingView),
          next: nextLink('/admin/bookings', { show_id, email, status, limit }, page.next),
        };
      },
    );

    app.post(
      '/admin/bookings/:id/refund',
      {
        schema: {
          summary: 'Refund a confirmed booking (simulated): REFUNDED, its seats freed to the waiting list first',
          description: 'Refunding twice answers the same 200. Any other status is a 409 naming it.',
          security: [{ adminToken: [] }],
          tags: ['admin'],
          params: IdParams,
          response: { 200: BookingView, 400: ErrorBody, 401: ErrorBody, 404: ErrorBody, 409: ErrorBody },
        },
      },
      async (request) => {
        const { id } = request.params;
        const outcome = await refundBooking(deps.db, id, { offerSeconds: deps.config.WAITLIST_OFFER_SECONDS });
        request.log.info({ bookingId: id, outcome: outcome.kind }, 'refund');
        if (outcome.kind === 'not_found') throw notFound('Booking');
        if (outcome.kind === 'rejected') {
          const status = outcome.booking.status.toLowerCase();
          throw new AppError(409, 'BOOKING_NOT_CONFIRMED', `Cannot refund: booking is ${status}; only a confirmed booking can be refunded`);
        }
        const { booking, offers = [] } = outcome;
        // For live streams, after the commit: the refund, and the offers its seats went to.
        deps.changes.publishBookings([
          { id: booking.id, status: booking.status, showId: booking.showId, seats: booking.seatLabels },
          ...offers.map((offer) => ({ id: offer.bookingId, status: 'HELD' as const, showId: offer.showId, seats: offer.seats })),
        ]);
        return bookingView(booking);
      },
    );
  };
