import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { environmentSettings } from '../../../shared/booking/sale-schedule.js';
import { PLAN_MAX_AGE_MS, generalAdmission, createShow, getShow, listShows } from '../../../shared/booking/shows.js';
import { deleteShow } from '../../../shared/booking/delete-show.js';
import { updateShow } from '../../../shared/booking/update-show.js';
import { AppError, badRequest, conflict, notFound } from '../errors.js';
import { QUEUES } from '../../../shared/queue/catalog.js';
import { queuedRequestsForShow } from '../../../shared/queue/pending.js';
import { RequestIndex } from '../../../shared/queue/request-index.js';
import type { AppDeps } from '../deps.js';
import { decodeCursor, nextLink } from '../pagination.js';
import {
  AdminShowListQuery,
  CreateShowBody,
  ErrorBody,
  IdParams,
  SeatView,
  SeatsQuery,
  ShowDeleted,
  ShowDetail,
  ShowList,
  ShowListQuery,
  UpdateShowBody,
} from '../schemas.js';
import { MAX_STALENESS_MS, SeatMapCache, matchesETag, negotiateEncoding } from '../seat-map.js';

type ShowViewDeps = Pick<AppDeps, 'db' | 'config' | 'lines'>;

/** One page of shows as the list routes answer it, with the link to the next. */
export async function showPage(deps: ShowViewDeps, path: string, query: z.infer<typeof ShowListQuery>): Promise<z.infer<typeof ShowList>> {
  const page = await listShows(
    deps.db,
    { when: query.when, limit: query.limit, after: query.cursor ? decodeCursor(query.cursor) : null },
    environmentSettings(deps.config),
  );
  const shows = await Promise.all(page.items.map(async (show) => ({ ...show, in_line: await deps.lines.of(show.id) })));
  return { shows, next: nextLink(path, { when: query.when, limit: query.limit }, page.next) };
}

/** The fields of an object that are set (exactOptionalPropertyTypes keeps `undefined` out of domain types). */
const definedOnly = <T extends object>(fields: T) =>
  Object.fromEntries(Object.entries(fields).filter(([, value]) => value !== undefined)) as { [K in keyof T]?: Exclude<T[K], undefined> };

/** An ISO time of a body as a Date, when given. */
const instant = (text: string | undefined) => (text === undefined ? undefined : new Date(text));

/** One show as every route answers it (404 when there is none). */
export async function showView(deps: ShowViewDeps, showId: string): Promise<z.infer<typeof ShowDetail>> {
  const [show, inLine] = await Promise.all([getShow(deps.db, showId, environmentSettings(deps.config)), deps.lines.of(showId)]);
  if (!show) throw notFound('Show');
  return { ...show, in_line: inLine };
}

export const adminShowRoutes =
  (deps: Pick<AppDeps, 'db' | 'config' | 'lines' | 'layouts' | 'queues' | 'redis' | 'availableSeats'>): FastifyPluginAsyncZod =>
  async (app) => {
    // The shows' held lines (waiting room, pause): a PATCHed opening moves its draw, a delete counts them.
    const line = new RequestIndex(deps.redis, deps.queues[QUEUES.bookings]!).line;
    app.post(
      '/admin/shows',
      {
        schema: {
          summary: 'Create a show and generate its seats',
          tags: ['admin'],
          description:
            'Either `total_seats` with an optional `price_cents` per seat (general admission: one section "GA", seats "1".."N", free by default) or `sections` ' +
            '(reserved seating: labels "SECTION-ROW-NUMBER", rows lettered A, B, ...). At most 100,000 seats.',
          security: [{ adminToken: [] }],
          body: CreateShowBody,
          response: { 201: ShowDetail, 400: ErrorBody, 401: ErrorBody },
        },
      },
      async (request, reply) => {
        const body = request.body;
        const layout = body.sections
          ? {
              seating: 'reserved' as const,
              sections: body.sections.map((section, rank) => ({
                name: section.name,
                rank,
                rows: section.rows,
                seatsPerRow: section.seats_per_row,
                priceCents: section.price_cents,
              })),
            }
          : generalAdmission(body.total_seats!, body.price_cents);
        const { id } = await createShow(deps.db, {
          name: body.name,
          startTime: new Date(body.start_time),
          layout,
          schedule: definedOnly({
            waitingRoomOpensAt: instant(body.waiting_room_opens_at),
            salesOpenAt: instant(body.sales_open_at),
            salesCloseAt: instant(body.sales_close_at),
          }),
          overrides: {
            holdSeconds: body.hold_seconds ?? null,
            maxSeatsPerCustomer: body.max_seats_per_customer ?? null,
            waitlistOfferSeconds: body.waitlist_offer_seconds ?? null,
          },
        });
        // Its first count of available seats, for the outlook of its line (no change will announce it).
        deps.availableSeats.refresh([id]);
        const show = await showView(deps, id);
        request.log.info({ showId: show.id, seats: show.total_seats, salesOpenAt: show.sales_open_at }, 'show created');
        return reply.status(201).header('Location', `/shows/${show.id}`).send(show);
      },
    );

    app.get(
      '/admin/shows',
      {
        schema: {
          summary: 'Every show, past and upcoming, a page at a time',
          security: [{ adminToken: [] }],
          tags: ['admin'],
          querystring: AdminShowListQuery,
          response: { 200: ShowList, 400: ErrorBody, 401: ErrorBody },
        },
      },
      async (request) => showPage(deps, '/admin/shows', request.query),
    );

    app.get(
      '/admin/shows/:id',
      {
        schema: {
          summary: 'One show with availability per section',
          security: [{ adminToken: [] }],
          tags: ['admin'],
          params: IdParams,
          response: { 200: ShowDetail, 400: ErrorBody, 401: ErrorBody, 404: ErrorBody },
        },
      },
      async (request) => showView(deps, request.params.id),
    );

    app.patch(
      '/admin/shows/:id',
      {
        schema: {
          summary: "Change a show's name, sale times or per-show settings",
          tags: ['admin'],
          description:
            'A time can be moved only while its current value is still ahead, and only to a time ahead: 409 `SCHEDULE_TIME_PASSED` ' +
            'naming the field and when it passed otherwise (an opening that happened, with its draw, cannot be undone). The order ' +
            '`waiting_room_opens_at ≤ sales_open_at < sales_close_at` is checked again (400 naming the field). `hold_seconds`, ' +
            '`max_seats_per_customer` and `waitlist_offer_seconds` apply to decisions and offers from then on (null: the environment default). Other API and worker ' +
            `processes see the change within ${PLAN_MAX_AGE_MS / 1_000} s.`,
          security: [{ adminToken: [] }],
          params: IdParams,
          body: UpdateShowBody,
          response: { 200: ShowDetail, 400: ErrorBody, 401: ErrorBody, 404: ErrorBody, 409: ErrorBody },
        },
      },
      async (request) => {
        const { id } = request.params;
        const body = request.body;
        const outcome = await updateShow(
          deps.db,
          id,
          {
            ...(body.name !== undefined ? { name: body.name } : {}),
            schedule: definedOnly({
              waitingRoomOpensAt: instant(body.waiting_room_opens_at),
              salesOpenAt: instant(body.sales_open_at),
              salesCloseAt: instant(body.sales_close_at),
            }),
            overrides: definedOnly({
              holdSeconds: body.hold_seconds,
              maxSeatsPerCustomer: body.max_seats_per_customer,
              waitlistOfferSeconds: body.waitlist_offer_seconds,
            }),
          },
          new Date(),
        );
        if (outcome.kind === 'not_found') throw notFound('Show');
        if (outcome.kind === 'invalid') throw badRequest(outcome.field, outcome.problem);
        if (outcome.kind === 'time_passed') {
          const at = outcome.at.toISOString();
          throw new AppError(409, 'SCHEDULE_TIME_PASSED', `${outcome.field} passed at ${at}: it can no longer be changed`, [
            { field: outcome.field, problem: `passed at ${at}` },
          ]);
        }
        deps.layouts.forget(id);
        // An undrawn waiting room is drawn at the new opening: its gate (what polls show) and its
        // schedule move now; the keeper also checks the opening in Postgres before drawing.
        if (body.sales_open_at !== undefined) await line.rescheduleOpening(id, Date.parse(body.sales_open_at));
        request.log.info({ showId: id, changed: Object.keys(body) }, 'show updated');
        return showView(deps, id);
      },
    );

    app.delete(
      '/admin/shows/:id',
      {
        schema: {
          summary: 'Delete a show nobody holds or owns a seat of',
          description:
            'Refused with 409 while the show has live bookings (SHOW_HAS_LIVE_BOOKINGS: HELD with time left, or CONFIRMED) ' +
            'or requests still queued (SHOW_HAS_QUEUED_REQUESTS). Removes its seats, sections and decided bookings. ' +
            `Other API processes may accept requests for it for up to ${PLAN_MAX_AGE_MS / 1_000} s (their plan cache); those end FAILED.`,
          security: [{ adminToken: [] }],
          tags: ['admin'],
          params: IdParams,
          response: { 200: ShowDeleted, 400: ErrorBody, 401: ErrorBody, 404: ErrorBody, 409: ErrorBody },
        },
      },
      async (request) => {
        const { id } = request.params;
        const queued = (await queuedRequestsForShow(deps.queues[QUEUES.bookings]!, id)) + (await line.length(id));
        if (queued > 0) throw conflict('SHOW_HAS_QUEUED_REQUESTS', `Cannot delete: ${queued} booking request(s) for this show are still queued`);
        const outcome = await deleteShow(deps.db, id);
        if (outcome.kind === 'not_found') throw notFound('Show');
        if (outcome.kind === 'live') {
          throw conflict('SHOW_HAS_LIVE_BOOKINGS', `Cannot delete: ${outcome.held} booking(s) hold seats and ${outcome.confirmed} are confirmed`);
        }
        deps.layouts.forget(id);
        request.log.info({ showId: id, seats: outcome.seats, bookings: outcome.bookings }, 'show deleted');
        return { id, deleted_seats: outcome.seats, deleted_bookings: outcome.bookings };
      },
    );
  };

export const showRoutes =
  (deps: Pick<AppDeps, 'db' | 'config' | 'lines' | 'layouts'>): FastifyPluginAsyncZod =>
  async (app) => {
    app.get(
      '/shows',
      {
        schema: {
          summary: 'List shows with seats available now, a page at a time',
          tags: ['shows'],
          description:
            'Upcoming shows by default (`when=past` or `all` for others). Follow `next` for the following page; it is null on the last.',
          querystring: ShowListQuery,
          response: { 200: ShowList, 400: ErrorBody },
        },
      },
      async (request) => showPage(deps, '/shows', request.query),
    );

    app.get(
      '/shows/:id',
      {
        schema: {
          summary: 'One show with availability per section',
          tags: ['shows'],
          params: IdParams,
          response: { 200: ShowDetail, 400: ErrorBody, 404: ErrorBody },
        },
      },
      async (request) => showView(deps, request.params.id),
    );

    const seatMaps = new SeatMapCache(deps.db);
    app.get(
      '/shows/:id/seats',
      {
        // The body is compressed once per change by the seat map cache, not per request here.
        compress: false,
        schema: {
          summary: 'Every seat of a show with its label, section, price and status',
          tags: ['shows'],
          description:
            `Served from a per-process cache at most ${MAX_STALENESS_MS} ms stale, gzip or br compressed when asked. ` +
            'Send the last `ETag` back in `If-None-Match`: an unchanged map answers 304 Not Modified without a body.',
          params: IdParams,
          querystring: SeatsQuery,
          response: {
            200: z.array(SeatView),
            304: z.null().describe('Not modified: the map still has the ETag sent in If-None-Match; no body'),
            400: ErrorBody,
            404: ErrorBody,
          },
        },
      },
      async (request, reply) => {
        const layout = await deps.layouts.get(request.params.id);
        if (!layout) throw notFound('Show');
        const { section } = request.query;
        if (section !== undefined && !layout.sections.some((candidate) => candidate.name === section)) {
          throw badRequest('section', `no section "${section}" in this show`);
        }
        const map = await seatMaps.get(request.params.id, section);
        void reply.header('ETag', map.etag).header('Cache-Control', 'no-cache').header('Vary', 'Accept-Encoding');
        // No body at all (undefined skips the serializer, which would write `null`).
        if (matchesETag(request.headers['if-none-match'], map.etag)) return reply.status(304).send(undefined as unknown as null);
        const encoding = negotiateEncoding(request.headers['accept-encoding']);
        if (encoding !== 'identity') void reply.header('Content-Encoding', encoding);
        // A Buffer goes out as is (Fastify skips the schema's serializer): the cache's ready JSON.
        const body = (await map.encoded(encoding)) as unknown as z.infer<typeof SeatView>[];
        return reply.type('application/json; charset=utf-8').send(body);
      },
    );
  };
