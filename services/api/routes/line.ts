import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { pauseSale, resumeSale } from '../../../shared/booking/pause.js';
import { showDraw } from '../../../shared/booking/show-draw.js';
import { QUEUES } from '../../../shared/queue/catalog.js';
import { RequestIndex } from '../../../shared/queue/request-index.js';
import type { AppDeps } from '../deps.js';
import { AppError, notFound } from '../errors.js';
import { DrawView, ErrorBody, IdParams, ShowDetail } from '../schemas.js';
import { showView } from './shows.js';

/** A show's line over HTTP: its draw's proof (public), pause and resume (admin). */

export const drawRoutes =
  (deps: Pick<AppDeps, 'db' | 'redis' | 'queues'>): FastifyPluginAsyncZod =>
  async (app) => {
    const line = new RequestIndex(deps.redis, deps.queues[QUEUES.bookings]!).line;
    app.get(
      '/shows/:id/draw',
      {
        schema: {
          summary: "The waiting room's draw and its proof",
          description:
            'After the sale opened: the seed (its SHA-256 is the `seed_sha256` every show view carried from the creation) and every entry\'s key, ' +
            'HMAC-SHA256(key = seed, message = booking id as a lowercase UUID), in draw order. Check that SHA-256(seed) is the commitment and that ' +
            "your id's HMAC stands at your place. Before the draw: 409 NOT_DRAWN_YET.",
          tags: ['shows'],
          params: IdParams,
          response: { 200: DrawView, 400: ErrorBody, 404: ErrorBody, 409: ErrorBody, 503: ErrorBody },
        },
      },
      async (request) => {
        const draw = await showDraw(deps.db, line, request.params.id);
        if (draw.state === 'unknown-show') throw notFound('Show');
        if (draw.state === 'not-drawn') {
          const at = draw.salesOpenAt.toISOString();
          throw new AppError(409, 'NOT_DRAWN_YET', `The waiting room is drawn when the sale opens at ${at}`, [
            { field: 'id', problem: `not drawn yet: the sale opens at ${at}` },
          ]);
        }
        return draw.proof;
      },
    );
  };

export const adminLineRoutes =
  (deps: Pick<AppDeps, 'db' | 'config' | 'lines' | 'redis' | 'queues' | 'availableSeats'>): FastifyPluginAsyncZod =>
  async (app) => {
    const line = new RequestIndex(deps.redis, deps.queues[QUEUES.bookings]!).line;
    for (const action of ['pause', 'resume'] as const) {
      app.post(
        `/admin/shows/:id/${action}`,
        {
          schema: {
            summary: action === 'pause' ? 'Pause the sale: requests are still accepted (202), none is decided' : 'Resume the sale: the line is decided in order',
            description:
              action === 'pause'
                ? 'Takes effect for every worker within a second; requests already in a transaction finish. Idempotent.'
                : 'Releases the requests that waited during the pause in line order. Idempotent.',
            security: [{ adminToken: [] }],
            tags: ['admin'],
            params: IdParams,
            response: { 200: ShowDetail, 400: ErrorBody, 401: ErrorBody, 404: ErrorBody, 503: ErrorBody },
          },
        },
        async (request) => {
          const { id } = request.params;
          const found = action === 'pause' ? await pauseSale(deps.db, line, id) : await resumeSale(deps.db, line, id);
          if (!found) throw notFound('Show');
          // While held, the line's outlook is read against these counts: make sure they are there and fresh.
          if (action === 'pause') await deps.availableSeats.recount(id);
          request.log.info({ showId: id }, action === 'pause' ? 'sale paused' : 'sale resumed');
          return showView(deps, id);
        },
      );
    }
  };
