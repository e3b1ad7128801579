import { randomUUID } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { sectionOfLabel } from '../../../shared/booking/layout.js';
import { bookingReader } from '../../../shared/booking/find-bookings.js';
import { leaveLine } from '../../../shared/booking/leave-line.js';
import type { StatusView } from '../../../shared/booking/standing.js';
import type { Standing } from '../live/booking-watch.js';
import type { PollWait } from '../live/live-updates.js';
import { intakeRefusal } from '../../../shared/booking/sale-schedule.js';
import { PLAN_MAX_AGE_MS } from '../../../shared/booking/shows.js';
import { cancelBooking, confirmBooking, type SettleOutcome } from '../../../shared/booking/settle.js';
import { bookingView, publicBookingView, type BookingView as BookingViewType } from '../../../shared/booking/view.js';
import { AppError, badRequest, conflict, notFound } from '../errors.js';
import { preferredWait } from '../prefer.js';
import { QUEUES, type BookingJob } from '../../../shared/queue/catalog.js';
import { RequestIndex } from '../../../shared/queue/request-index.js';
import type { AppDeps } from '../deps.js';
import { RetryAfterAdvisor } from '../retry-after.js';
import {
  BookingAccepted,
  BookingAcceptedHeaders,
  BookingDecidedHeaders,
  BookingRequestHeaders,
  BookingStatusView,
  BookingView,
  ConfirmBody,
  ErrorBody,
  IdParams,
  StatusPollHeaders,
  StatusPollResponseHeaders,
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
  (deps: Pick<AppDeps, 'config' | 'db' | 'redis' | 'queues' | 'intake' | 'standing' | 'layouts' | 'changes' | 'live'>): FastifyPluginAsyncZod =>
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
            'With `Prefer: wait=N` (RFC 7240) the answer waits up to N seconds for the decision: 200 with it (the status view, ' +
            '`Preference-Applied: wait=N`), or the 202 once N seconds pass; one request instead of a submit and a poll. ' +
            'Requests are taken from the show\'s `waiting_room_opens_at` (earlier: 409 `SALE_NOT_OPEN`) until its `sales_close_at` ' +
            '(by default its start; later: 409 `SALE_CLOSED`); both name the time in `details`. A schedule changed by PATCH reaches ' +
            `every API process within ${PLAN_MAX_AGE_MS / 1_000} s.`,
          body: BookingBody,
          headers: BookingRequestHeaders,
          tags: ['bookings'],
          response: {
            200: {
              description: 'Decided while the answer waited (`Prefer: wait=N`): where the booking stands, as its status URL answers',
              headers: BookingDecidedHeaders,
              content: { 'application/json': { schema: BookingStatusView } },
            },
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
        const refusal = intakeRefusal(layout, new Date());
        if (refusal) {
          const at = refusal.at.toISOString();
          throw refusal.code === 'SALE_NOT_OPEN'
            ? new AppError(409, 'SALE_NOT_OPEN', `Requests for this show are taken from ${at}, when its waiting room opens`, [
                { field: 'show_id', problem: `the waiting room opens at ${at} (waiting_room_opens_at)` },
              ])
            : new AppError(409, 'SALE_CLOSED', `Sales for this show closed at ${at}`, [
                { field: 'show_id', problem: `the sale closed at ${at} (sales_close_at)` },
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
        const salesOpenAt = layout.salesOpenAt.getTime();
        // Read before anything is accepted: a malformed preference is a 400 with nothing queued.
        const wait = preferredWait(request.headers.prefer);
        // Watching from before the enqueue, so a decision made before the submit returns is seen
        // without a read of its own (LiveUpdates.startWait). Null at the stream cap: no wait.
        let watching = wait !== null && wait > 0 ? deps.live.startWait(job.id) : null;
        let submitted: Awaited<ReturnType<typeof deps.intake.submit>>;
        try {
          submitted = await deps.intake.submit(job, request.headers['idempotency-key'], { salesOpenAt });
        } catch (error) {
          watching?.cancel();
          throw error;
        }
        const { id, replayed, position, phase } = submitted;
        request.log.info({ bookingId: id, showId: job.show_id, seats: job.seat_count, replayed, position, phase }, 'booking accepted');
        let queued: StatusView = { id, status: 'QUEUED', ...(phase ? { phase } : {}), ...(position !== null ? { position } : {}), updated_at: job.accepted_at };
        if (watching && id !== job.id) {
          // An Idempotency-Key replay names the first request: watch that one, then read it.
          watching.cancel();
          watching = deps.live.startWait(id);
          const view = await readStanding(id, watching);
          if (view.status !== 'QUEUED') return answerDecided(reply, view, wait!);
          queued = view;
        }
        // The waiting room is decided by the draw, maybe long after N seconds: answer at once
        // rather than hold a stream slot for every entrant.
        if (watching && queued.phase !== 'WAITING_ROOM') {
          const waited = await waitWhileQueued(watching, queued, wait!, reply);
          if (deps.live.slots.shuttingDown) reply.header('Connection', 'close');
          if (waited !== 'unknown' && waited.status !== 'QUEUED') return answerDecided(reply, waited, wait!);
          // Still queued after the wait (or a shutdown): its place in line now. The request is
          // accepted, so a failed read answers the 202 with the place it had, never an error
          // (which would tell the client to send it again).
          const now = await deps.standing.status(id).catch(() => 'unknown' as const);
          if (now !== 'unknown' && now.status !== 'QUEUED') return answerDecided(reply, now, wait!);
          if (now !== 'unknown') queued = now;
          reply.header('Preference-Applied', `wait=${wait}`);
        } else {
          watching?.cancel();
        }
        const place = queued.phase === 'IN_LINE' ? (queued.position ?? 0) : null;
        const seconds = queued.phase === 'WAITING_ROOM' ? retryAfter.secondsUntil(salesOpenAt) : retryAfter.secondsFor(place ?? 0);
        return reply
          .status(202)
          .header('Location', statusUrl(id))
          .header('Retry-After', String(seconds))
          .send({ id, status: 'QUEUED' as const, phase: queued.phase ?? null, position: place, status_url: statusUrl(id) });
      },
    );

    /** A booking's standing read after its watch began (so no change between the two is missed). */
    async function readStanding(id: string, watching: PollWait | null): Promise<StatusView> {
      let view: Standing;
      try {
        view = await deps.standing.status(id);
      } catch (error) {
        watching?.cancel();
        throw error;
      }
      if (view === 'unknown' || view.status !== 'QUEUED') watching?.cancel();
      if (view === 'unknown') throw notFound('Booking');
      return view;
    }

    /** POST /booking's answer when the decision came while it waited: what the status URL answers now. */
    function answerDecided(reply: FastifyReply, view: StatusView, wait: number) {
      return reply.status(200).header('Content-Location', statusUrl(view.id)).header('Preference-Applied', `wait=${wait}`).send(view);
    }

    app.get(
      '/booking/:id/status',
      {
        // Polls have their own budget per client, apart from the one bookings and reads share:
        // buyers behind one NAT poll far more often than they book.
        config: { rateLimit: { max: deps.config.STATUS_RATE_LIMIT_PER_MINUTE, timeWindow: 60_000 } },
        schema: {
          summary: 'Poll a booking: queue position while QUEUED, then its decision',
          tags: ['bookings'],
          description:
            '`Prefer: wait=N` (RFC 7240, N seconds, at most 30: larger values count as 30): while the booking is QUEUED the answer waits until it is ' +
            'decided or N seconds pass, then answers as without it, with `Preference-Applied: wait=N`. One request instead of repeated polls.',
          params: IdParams,
          headers: StatusPollHeaders,
          response: {
            200: { description: 'Where the booking stands', headers: StatusPollResponseHeaders, content: { 'application/json': { schema: BookingStatusView } } },
            400: ErrorBody,
            404: ErrorBody,
          },
        },
      },
      async (request, reply) => {
        const { id } = request.params;
        const wait = preferredWait(request.headers.prefer);
        // A poll that may wait starts watching before its first read (LiveUpdates.startWait):
        // then that read is the only one before the wait.
        const watching = wait !== null && wait > 0 ? deps.live.startWait(id) : null;
        let view: Standing = await readStanding(id, watching);
        if (wait !== null) {
          let waited: Standing | 'no-slot' = view;
          if (view.status === 'QUEUED' && wait > 0) waited = watching ? await waitWhileQueued(watching, view, wait, reply) : 'no-slot';
          // Ended by a shutdown: the server's close waits for this connection, so it closes after the answer.
          if (deps.live.slots.shuttingDown) reply.header('Connection', 'close');
          if (waited !== 'no-slot') {
            // A decision is a fresh read already; still queued (the deadline, a shutdown), read
            // again for the place in line now.
            view = waited !== 'unknown' && waited.status !== 'QUEUED' ? waited : await deps.standing.status(id);
            if (view === 'unknown') throw notFound('Booking');
            reply.header('Preference-Applied', `wait=${wait}`);
          }
        }
        if (view.status === 'QUEUED') {
          const seconds = view.sales_open_at ? retryAfter.secondsUntil(Date.parse(view.sales_open_at)) : retryAfter.secondsFor(view.position ?? 0);
          reply.header('Retry-After', String(seconds));
        }
        return view;
      },
    );

    /**
     * Rides on the live updates: no Postgres connection is held while waiting, and the wait
     * holds a stream slot (at the cap, the answer comes at once, preference unapplied). Ends
     * early when the client goes away.
     */
    async function waitWhileQueued(watching: PollWait, view: StatusView, seconds: number, reply: FastifyReply) {
      reply.raw.once('close', watching.abandon);
      try {
        return await watching.until(view, seconds * 1_000);
      } finally {
        reply.raw.off('close', watching.abandon);
      }
    }

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

    async function readBack(id: string): Promise<SettleOutcome> {
      const booking = await bookingReader(deps.db)(id);
      return booking ? { kind: 'ok', booking } : { kind: 'not_found' };
    }

    /**
     * A settle that moved a booking (confirmed, payment declined, cancelled, or found lapsed and
     * expired on the spot) is published for live streams: fire and forget, after the commit.
     */
    function publishSettled(outcome: SettleOutcome): void {
      if (outcome.kind === 'not_found') return;
      const { booking } = outcome;
      // The waiting list's entries that got the seats this settle freed: HELD now (offers).
      const offers = (outcome.offers ?? []).map((offer) => ({ id: offer.bookingId, status: 'HELD' as const, showId: offer.showId, seats: offer.seats }));
      if (outcome.kind === 'rejected' && booking.status !== 'EXPIRED') return;
      deps.changes.publishBookings([{ id: booking.id, status: booking.status, showId: booking.showId, seats: booking.seatLabels }, ...offers]);
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
        publishSettled(outcome);
        request.log.info({ bookingId: id, payment: request.body.payment, outcome: outcome.kind }, 'confirm');
        return answer(id, outcome, 'confirm');
      },
    );

    app.post(
      '/booking/:id/cancel',
      {
        schema: {
          summary: 'Cancel a held booking and release its seats, leave the line, or leave the waiting list',
          description:
            'A held booking is cancelled and its seats released. A request still QUEUED (in the waiting room or in line) leaves the line: ' +
            'CANCELLED at once with no seats, never decided, and the requests behind it move up. A WAITLISTED booking leaves the waiting list: CANCELLED, no seats.',
          tags: ['bookings'],
          params: IdParams,
          response: { 200: BookingView, 400: ErrorBody, 404: ErrorBody, 409: ErrorBody },
        },
      },
      async (request) => {
        const { id } = request.params;
        await markSettled(request, id);
        let outcome = await cancelBooking(deps.db, id, settleSettings);
        if (outcome.kind === 'not_found') {
          // Still queued (waiting room or in line): it leaves the line, never to be decided.
          const queued = await deps.standing.inQueue(id, { withData: true });
          if (queued.state === 'queued' && queued.data) {
            const left = await leaveLine(deps.db, line, queued.data);
            request.log.info({ bookingId: id, outcome: left.kind }, 'left the line');
            // Decided just before it could leave: that decision is what gets cancelled.
            outcome = left.kind === 'left' ? await readBack(id) : await cancelBooking(deps.db, id, settleSettings);
          }
        }
        publishSettled(outcome);
        request.log.info({ bookingId: id, outcome: outcome.kind }, 'cancel');
        return answer(id, outcome, 'cancel');
      },
    );
  };
