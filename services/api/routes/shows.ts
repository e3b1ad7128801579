import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { generalAdmission, createShow, getShow, listShows } from '../../../shared/booking/shows.js';
import { badRequest, notFound } from '../../../shared/errors.js';
import type { AppDeps } from '../app.js';
import { CreateShowBody, ErrorBody, IdParams, SeatView, SeatsQuery, ShowDetail, ShowSummary } from '../schemas.js';
import { MAX_STALENESS_MS, SeatMapCache, matchesETag, negotiateEncoding } from '../seat-map.js';

export const adminShowRoutes =
  (deps: AppDeps): FastifyPluginAsyncZod =>
  async (app) => {
    app.post(
      '/admin/shows',
      {
        schema: {
          summary: 'Create a show and generate its seats',
          tags: ['admin'],
          description:
            'Either `total_seats` (general admission: one section "GA", seats "1".."N") or `sections` ' +
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
          : generalAdmission(body.total_seats!);
        const show = await createShow(deps.db, { name: body.name, startTime: new Date(body.start_time), layout });
        request.log.info({ showId: show.id, seats: show.total_seats }, 'show created');
        return reply.status(201).header('Location', `/shows/${show.id}`).send(show);
      },
    );
  };

export const showRoutes =
  (deps: AppDeps): FastifyPluginAsyncZod =>
  async (app) => {
    app.get(
      '/shows',
      { schema: { summary: 'List shows with seats available now', tags: ['shows'], response: { 200: z.array(ShowSummary) } } },
      async () => listShows(deps.db),
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
      async (request) => {
        const show = await getShow(deps.db, request.params.id);
        if (!show) throw notFound('Show');
        return show;
      },
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
