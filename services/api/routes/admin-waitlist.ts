import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { closeWaitlist, listWaitlist } from '../../../shared/booking/waitlist.js';
import type { AppDeps } from '../deps.js';
import { notFound } from '../errors.js';
import { decodeCursor, nextLink } from '../pagination.js';
import { ErrorBody, ShowIdParams, WaitlistClosed, WaitlistPage, WaitlistQuery } from '../schemas.js';

/** A show's waiting list for operators: read it a page at a time, close it (shared/booking/waitlist.ts). */
export const adminWaitlistRoutes =
  (deps: Pick<AppDeps, 'db' | 'layouts'>): FastifyPluginAsyncZod =>
  async (app) => {
    app.get(
      '/admin/shows/:id/waitlist',
      {
        schema: {
          summary: "A show's waiting list in order (position 1 is next), a page at a time",
          description: 'Only entries still waiting (WAITLISTED). Emails in full.',
          security: [{ adminToken: [] }],
          tags: ['admin'],
          params: ShowIdParams,
          querystring: WaitlistQuery,
          response: { 200: WaitlistPage, 400: ErrorBody, 401: ErrorBody, 404: ErrorBody },
        },
      },
      async (request) => {
        const { id } = request.params;
        if (!(await deps.layouts.get(id))) throw notFound('Show');
        const { limit, cursor } = request.query;
        const page = await listWaitlist(deps.db, id, limit, cursor ? decodeCursor(cursor) : null);
        return {
          show_id: id,
          entries: page.items.map((entry) => ({
            booking_id: entry.bookingId,
            position: entry.position,
            customer_email: entry.customerEmail,
            seat_count: entry.seatCount,
            section: entry.section,
            waiting_since: entry.waitingSince.toISOString(),
          })),
          next: nextLink(`/admin/shows/${id}/waitlist`, { limit }, page.next),
        };
      },
    );

    app.post(
      '/admin/shows/:id/waitlist/close',
      {
        schema: {
          summary: "Close a show's waiting list: every entry still waiting becomes FAILED SOLD_OUT",
          description:
            'Requests with `waitlist: true` decided after this fail SOLD_OUT as without it. The list also closes by itself when sales close (the show\'s start). Closing twice answers 200 again.',
          security: [{ adminToken: [] }],
          tags: ['admin'],
          params: ShowIdParams,
          response: { 200: WaitlistClosed, 400: ErrorBody, 401: ErrorBody, 404: ErrorBody },
        },
      },
      async (request) => {
        const { id } = request.params;
        const closed = await closeWaitlist(deps.db, id);
        if (closed === 'not_found') throw notFound('Show');
        request.log.info({ showId: id, failed: closed.failed.length }, 'waiting list closed');
        return { show_id: id, closed_at: closed.closedAt.toISOString(), failed: closed.failed.length };
      },
    );
  };
