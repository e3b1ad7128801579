import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { findBookings } from '../../../shared/booking/find-bookings.js';
import { bookingView } from '../../../shared/booking/view.js';
import type { AppDeps } from '../deps.js';
import { decodeCursor, nextLink } from '../pagination.js';
import { AdminBookingList, AdminBookingQuery, ErrorBody } from '../schemas.js';

/** Finding bookings for support: full emails (admin only), newest first. */
export const adminBookingRoutes =
  (deps: Pick<AppDeps, 'db'>): FastifyPluginAsyncZod =>
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
  };
