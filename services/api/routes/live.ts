import type { FastifyReply } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { isFinal } from '../../../shared/booking/statuses.js';
import type { StatusView } from '../../../shared/booking/standing.js';
import { AppError, notFound, unavailable } from '../errors.js';
import type { AppDeps } from '../deps.js';
import type { Standing } from '../live/booking-watch.js';
import type { ShowUpdate } from '../live/show-watch.js';
import type { StreamKind } from '../live/stream-slots.js';
import { eventIdOf, isNewer, retryAfterSeconds, retryHintMs } from '../live/status-events.js';
import { JsonText, jsonWriter } from '../schema-compilers.js';
import { BookingStatusView, ErrorBody, IdParams } from '../schemas.js';

/**
 * Server-sent events: a booking's status as it changes, and a show's availability and seats.
 * The framing (fields, heartbeat comments, the event-stream headers) is @fastify/sse's; these
 * routes only translate what services/api/live/ watches into events.
 */

/** A queued booking's place in line goes out at most this often per stream. */
const QUEUED_UPDATE_MS = 1_000;

const EventStream = (description: string) => ({
  description,
  content: { 'text/event-stream': { schema: z.string() } },
});

export const liveRoutes =
  (deps: Pick<AppDeps, 'standing' | 'live'>): FastifyPluginAsyncZod =>
  async (app) => {
    // A status event's data is the poll's body, written by the same compiled writer.
    const writeStatus = jsonWriter(BookingStatusView);
    const { live } = deps;

    /** A stream's slot under SSE_MAX_STREAMS, or 503 + Retry-After (spread) at the cap or while shutting down. */
    function slotFor(kind: StreamKind, reply: FastifyReply) {
      const socket = reply.request.raw.socket;
      // At shutdown: end the stream and its connection too (an event stream's connection is
      // keep-alive, and the server's close would otherwise wait for it to idle out).
      const slot = live.slots.acquire(kind, () => {
        reply.sse.close();
        socket.end();
      });
      if (!slot) {
        throw new AppError(503, 'TOO_MANY_STREAMS', 'This API process has as many live streams open as it serves; retry shortly (or poll)', undefined, retryAfterSeconds());
      }
      return slot;
    }

    async function send(reply: FastifyReply, event: string, id: string, data: unknown): Promise<void> {
      if (!reply.sse.isConnected) return;
      live.counted(event);
      await reply.sse.send({ id, event, data });
    }

    app.get(
      '/booking/:id/events',
      {
        sse: 'manual',
        schema: {
          summary: 'A booking as it changes (server-sent events)',
          tags: ['bookings'],
          description:
            '`event: status`, `data:` the JSON of GET /booking/:id/status, an `id:` on every event. The current state at once, then every change ' +
            '(the place in line at most once a second); after a final state (CONFIRMED, FAILED, CANCELLED, EXPIRED) it closes. ' +
            'A reconnect with `Last-Event-ID` gets only what is newer; 204 when the booking is final and the client has seen it (EventSource then stops).',
          params: IdParams,
          headers: z.object({
            'last-event-id': z
              .string()
              .optional()
              .describe('The id of the last event the client got (EventSource sends it when it reconnects): only newer states are sent'),
          }),
          response: {
            200: EventStream('An event stream: `retry:` first, then `event: status` events; `: heartbeat` comments keep it open'),
            204: z.null().describe('Final, and the client has seen that state (its Last-Event-ID): nothing more will come, and EventSource stops'),
            400: ErrorBody,
            404: ErrorBody,
            503: ErrorBody.describe('At the stream cap (SSE_MAX_STREAMS), shutting down, or Redis/Postgres unavailable; Retry-After says when to retry'),
          },
        },
      },
      async (request, reply) => {
        const { id } = request.params;
        const slot = slotFor('booking', reply);
        let first: Standing;
        try {
          first = await deps.standing.status(id);
        } catch (error) {
          slot.release();
          throw error;
        }
        if (first === 'unknown') {
          slot.release();
          throw notFound('Booking');
        }
        let lastId = reply.sse.lastEventId;
        if (isFinal(first.status) && !isNewer(first, lastId)) {
          slot.release();
          return reply.code(204).send(null);
        }

        let lastSentAt = 0;
        let deferred: NodeJS.Timeout | undefined;
        let pending: StatusView | undefined;
        let unwatch = () => {};
        const stop = () => {
          clearTimeout(deferred);
          unwatch();
          slot.release();
        };
        reply.sse.onClose(stop);
        reply.sse.keepAlive();

        const emit = async (view: StatusView): Promise<void> => {
          const eventId = eventIdOf(view);
          lastId = eventId;
          lastSentAt = Date.now();
          await send(reply, 'status', eventId, new JsonText(writeStatus(view)));
          if (isFinal(view.status)) reply.sse.close();
        };
        const onView = (view: Standing) => {
          if (view === 'unknown') {
            reply.sse.close();
            return;
          }
          if (!isNewer(view, lastId)) return;
          // A decision goes out at once; a move in line waits for its once-a-second turn.
          const wait = view.status === 'QUEUED' ? lastSentAt + QUEUED_UPDATE_MS - Date.now() : 0;
          if (wait <= 0) {
            clearTimeout(deferred);
            deferred = undefined;
            void emit(view);
            return;
          }
          pending = view;
          deferred ??= setTimeout(() => {
            deferred = undefined;
            if (pending && isNewer(pending, lastId)) void emit(pending);
          }, wait);
        };

        // Ended by a shutdown during the read: nothing was sent yet, so answer 503.
        if (!reply.sse.isConnected) throw unavailable('This API process is shutting down; retry');
        await reply.sse.send({ data: undefined, retry: retryHintMs() });
        if (isNewer(first, lastId)) await emit(first);
        if (!reply.sse.isConnected) return;
        unwatch = live.bookings.watch(id, onView);
      },
    );

    app.get(
      '/shows/:id/events',
      {
        sse: 'manual',
        schema: {
          summary: "A show's availability and seat changes (server-sent events)",
          tags: ['shows'],
          description:
            '`event: availability` `{ show_id, available_seats, sections: [{ name, available_seats, held_seats, booked_seats }], sales_state, in_line }` ' +
            'on connect and on every change (at most four a second); `event: seats` `{ show_id, seats: [{ label, status }], reload }` with the seats whose status changed ' +
            '(`reload: true`: changes may have been missed, read GET /shows/:id/seats again). Every event has an `id:`; a reconnect gets the current availability.',
          params: IdParams,
          response: {
            200: EventStream('An event stream: `retry:` first, then `availability` and `seats` events; `: heartbeat` comments keep it open'),
            400: ErrorBody,
            404: ErrorBody,
            503: ErrorBody.describe('At the stream cap (SSE_MAX_STREAMS), shutting down, or Postgres unavailable; Retry-After says when to retry'),
          },
        },
      },
      async (request, reply) => {
        const { id } = request.params;
        const slot = slotFor('show', reply);
        let unwatch = () => {};
        try {
          // Watch before reading, so a change during the read is not missed (at worst sent twice).
          let sequence = 0;
          const nextId = () => `${Date.now()}-${++sequence}`;
          let lastAvailability = '';
          const sendUpdate = async (update: ShowUpdate) => {
            const json = JSON.stringify(update.availability);
            if (json !== lastAvailability) {
              lastAvailability = json;
              await send(reply, 'availability', nextId(), update.availability);
            }
            if (update.seats.length > 0 || update.reload) {
              await send(reply, 'seats', nextId(), { show_id: id, seats: update.seats, reload: update.reload });
            }
          };
          let opened = false;
          const queued: ShowUpdate[] = [];
          unwatch = live.shows.watch(id, (update) => {
            if (update === 'gone') {
              if (opened) reply.sse.close();
              return;
            }
            if (opened) void sendUpdate(update);
            else queued.push(update);
          });
          const availability = await live.shows.current(id);
          if (!availability) throw notFound('Show');
          reply.sse.onClose(() => {
            unwatch();
            slot.release();
          });
          reply.sse.keepAlive();
          if (!reply.sse.isConnected) throw unavailable('This API process is shutting down; retry');
          await reply.sse.send({ data: undefined, retry: retryHintMs() });
          await sendUpdate({ availability, seats: [], reload: false });
          opened = true;
          for (const update of queued) await sendUpdate(update);
        } catch (error) {
          unwatch();
          slot.release();
          throw error;
        }
      },
    );
  };
