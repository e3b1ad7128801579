import { randomUUID } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { sectionOfLabel } from '../../../shared/booking/layout.js';
import { cancelBooking, confirmBooking, type SettleOutcome } from '../../../shared/booking/settle.js';
import { bookingView, publicBookingView, type BookingView as BookingViewType } from '../../../shared/booking/view.js';
import { AppError, badRequest, conflict, notFound } from '../errors.js';
import { QUEUES, type BookingJob } from '../../../shared/queue/catalog.js';
import { RequestIndex } from '../../../shared/queue/request-index.js';
import type { AppDeps } from '../deps.js';
import { RetryAfterAdvisor } from '../retry-after.js';
import {
  BookingAccepted,
  BookingAcceptedHeaders,
  BookingStatusView,
  BookingView,
  ConfirmBody,
  ErrorBody,
  IdParams,
  IdempotencyHeaders,
  bookingBody,
} from '../schemas.js';

const statusUrl = (id: string) => `/booking/${id}/status`;

const REJECTION_CODES: Record<string, string> = {
  EXPIRED: 'HOLD_EXPIRED',
  FAILED: 'BOOKING_FAILED',
  CANCELLED: 'BOOKING_CANCELLED',
  CONFIRMED: 'BOOKING_CONFIRMED',
  WAITLISTED: 'BOOKING_WAITLISTED',
  REFUNDED: 'BOOKING_REFUNDED',
};

export const bookingRoutes =
  (deps: Pick<AppDeps, 'config' | 'db' | 'redis' | 'queues' | 'intake' | 'standing' | 'layouts'>): FastifyPluginAsyncZod =>
  async (app) => {
    const BookingBody = bookingBody(deps.config);
    const line = new RequestIndex(deps.redis, deps.queues[QUEUES.bookings]!);
    const retryAfter = new RetryAfterAdvisor(() => line.taken());
    const settleSettings = { offerSeconds: deps.config.WAITLIST_OFFER_SECONDS };

    app.post(
      '/booking',
      {
        schema: {
          summary: 'Request seats: queued at once, decided by a worker',
          description:
            'Either `seat_count` (best available, optionally in `section`) or `seats` (specific labels). ' +
            'With `waitlist: true` (best available only), a sold-out request joins the show\'s waiting list (WAITLISTED) instead of failing SOLD_OUT. ' +
            'Answers 202 with the request id; poll `status_url`. Send an `Idempotency-Key` header to make retries safe. ' +
            'Sales close when the show starts: 409 `SALE_CLOSED`.',
          body: BookingBody,
          headers: IdempotencyHeaders,
          tags: ['bookings'],
          response: {
            202: {
              description: 'Queued; poll the Location (status_url) after Retry-After seconds',
              headers: BookingAcceptedHeaders,
              content: { 'application/json': { schema: BookingAccepted } },
            },
            400: ErrorBody,
            404: ErrorBody,
            409: ErrorBody,
            413: ErrorBody,
            422: ErrorBody,
            429: ErrorBody,
            503: ErrorBody,
          },
        },
      },
      async (request, reply) => {
        const body = request.body;
        const layout = await deps.layouts.get(body.show_id);
        if (!layout) throw new AppError(404, 'SHOW_NOT_FOUND', `Show ${body.show_id} not found`);
        if (Date.now() >= layout.startTime.getTime()) {
          const started = layout.startTime.toISOString();
          throw new AppError(409, 'SALE_CLOSED', `Sales for this show closed when it started at ${started}`, [
            { field: 'show_id', problem: `the show started at ${started}` },
          ]);
        }
        if (body.section !== undefined && !layout.sections.some((section) => section.name === body.section)) {
          throw badRequest('section', `no section "${body.section}" in this show`);
        }
        body.seats?.forEach((label, index) => {
          if (!sectionOfLabel(layout, label)) throw badRequest(`seats[${index}]`, `no seat "${label}" in this show`);
        });
        const job: BookingJob = {
          id: randomUUID(),
          show_id: body.show_id,
          customer_email: body.customer_email,
          seat_count: body.seats?.length ?? body.seat_count!,
          section: body.section ?? null,
          seats: body.seats ?? null,
          accepted_at: new Date().toISOString(),
          idempotency_key: request.headers['idempotency-key'] ?? null,
          request_id: String(request.id),
          ...(body.waitlist ? { waitlist: true } : {}),
        };
        const { id, replayed, position } = await deps.intake.submit(job, request.headers['idempotency-key']);
        request.log.info({ bookingId: id, showId: job.show_id, seats: job.seat_count, replayed, position }, 'booking accepted');
        return reply
          .status(202)
          .header('Location', statusUrl(id))
          .header('Retry-After', String(retryAfter.secondsFor(position ?? 0)))
          .send({ id, status: 'QUEUED' as const, position, status_url: statusUrl(id) });
      },
    );

    app.get(
      '/booking/:id/status',
      {
        // Polls have their own budget per client, apart from the one bookings and reads share:
        // buyers behind one NAT poll far more often than they book.
        config: { rateLimit: { max: deps.config.STATUS_RATE_LIMIT_PER_MINUTE, timeWindow: 60_000 } },
        schema: {
          summary: 'Poll a booking: queue position while QUEUED, then its decision',
          tags: ['bookings'],
          params: IdParams,
          response: { 200: BookingStatusView, 400: ErrorBody, 404: ErrorBody },
        },
      },
      async (request, reply) => {
        const { id } = request.params;
        const view = await deps.standing.status(id);
        if (view === 'unknown') throw notFound('Booking');
        if (view.status === 'QUEUED') reply.header('Retry-After', String(retryAfter.secondsFor(view.position ?? 0)));
        return view;
      },
    );

    app.get(
      '/booking/:id',
      {
        schema: {
          summary: 'The whole booking (customer_email masked: a***@example.com)',
          tags: ['bookings'],
          params: IdParams,
          response: { 200: BookingView, 400: ErrorBody, 404: ErrorBody },
        },
      },
      async (request) => {
        const view = await deps.standing.booking(request.params.id);
        if (view === 'unknown') throw notFound('Booking');
        return publicBookingView(view);
      },
    );

    /**
     * Polls stop trusting the HELD recorded in Redis before the hold is settled. Best effort: a
     * settle needs only Postgres, and should Redis fail here a poll could show HELD until the
     * hold would have lapsed (RECORDED_HOLD_MARGIN_MS before); the settle's own answer is right.
     */
    async function markSettled(request: FastifyRequest, id: string): Promise<void> {
      await deps.standing.beforeSettle(id).catch((error: unknown) => {
        request.log.warn({ bookingId: id, err: error instanceof Error ? error.message : error }, 'could not mark the booking settled in Redis');
      });
    }

    /** Maps a settle outcome to HTTP: 200 with the booking, 409 naming why, 404 if unknown. */
    async function answer(id: string, outcome: SettleOutcome, action: string): Promise<BookingViewType> {
      if (outcome.kind === 'ok') return publicBookingView(bookingView(outcome.booking));
      if (outcome.kind === 'rejected') {
        const { status, failureReason } = outcome.booking;
        const why = status === 'FAILED' ? `failed (${failureReason})` : status.toLowerCase();
        throw new AppError(409, REJECTION_CODES[status] ?? 'INVALID_STATE', `Cannot ${action}: booking is ${why}`);
      }
      const queued = await deps.standing.inQueue(id);
      if (queued.state === 'queued') throw conflict('BOOKING_QUEUED', `Cannot ${action}: booking is still queued; poll its status`);
      throw notFound('Booking');
    }

    app.post(
      '/booking/:id/confirm',
      {
        schema: {
          summary: 'Pay for a held booking (simulated payment)',
          tags: ['bookings'],
          description: '`payment: "success"` books the seats; `"fail"` fails the booking (PAYMENT_FAILED) and releases them.',
          params: IdParams,
          body: ConfirmBody,
          response: { 200: BookingView, 400: ErrorBody, 404: ErrorBody, 409: ErrorBody },
        },
      },
      async (request) => {
        const { id } = request.params;
        await markSettled(request, id);
        const outcome = await confirmBooking(deps.db, id, request.body.payment === 'success', settleSettings);
        request.log.info({ bookingId: id, payment: request.body.payment, outcome: outcome.kind }, 'confirm');
        return answer(id, outcome, 'confirm');
      },
    );

    app.post(
      '/booking/:id/cancel',
      {
        schema: {
          summary: 'Cancel a held booking and release its seats, or leave the waiting list',
          tags: ['bookings'],
          params: IdParams,
          response: { 200: BookingView, 400: ErrorBody, 404: ErrorBody, 409: ErrorBody },
        },
      },
      async (request) => {
        const { id } = request.params;
        await markSettled(request, id);
        const outcome = await cancelBooking(deps.db, id, settleSettings);
        request.log.info({ bookingId: id, outcome: outcome.kind }, 'cancel');
        return answer(id, outcome, 'cancel');
      },
    );
  };
