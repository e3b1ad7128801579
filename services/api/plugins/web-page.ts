import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { Logger } from '../../../shared/logger.js';
import { AppError } from '../errors.js';

/**
 * The buyer's page at `/`, the admin page at `/admin`, and their scripts and styles under
 * `/assets/`: static files built from web/ by `npm run build:web` (web/build.ts) into
 * dist/web. Under tsx this file is services/api/plugins/web-page.ts, compiled it is
 * dist/services/api/plugins/web-page.js, so the build is looked for from both.
 *
 * The pages run under the API's strict CSP (browser-security.ts: scripts from this origin
 * only, nothing inline) and call the API on the same origin. The admin page holds no secret:
 * the operator types the token in, and every admin call still carries it.
 */

export const WEB_PAGE_ROUTES = { buyer: '/', admin: '/admin', assets: '/assets/' } as const;

function findBuiltPage(): string | undefined {
  const here = path.dirname(fileURLToPath(import.meta.url));
  return ['../../../dist/web', '../../../web']
    .map((relative) => path.resolve(here, relative))
    .find((folder) => existsSync(path.join(folder, 'index.html')) && existsSync(path.join(folder, 'assets')));
}

export async function registerWebPage(app: FastifyInstance, logger: Logger): Promise<void> {
  const root = findBuiltPage();
  // Hidden from the OpenAPI document like /docs: pages for people, not API operations.
  const page = (file: string) => ({
    schema: { hide: true },
    handler: async (_request: unknown, reply: FastifyReply) => {
      if (!root) throw new AppError(404, 'WEB_PAGE_NOT_BUILT', 'The web page is not built: run `npm run build:web`, then restart the API');
      // The page names its assets by content hash, so a new build must be seen at once.
      return reply.header('Cache-Control', 'no-cache').sendFile(file, root, { cacheControl: false });
    },
  });
  if (!root) logger.warn('the web page is not built (npm run build:web): / and /admin answer 404 until it is');
  await app.register(fastifyStatic, {
    root: path.join(root ?? path.resolve('dist/web'), 'assets'),
    prefix: WEB_PAGE_ROUTES.assets,
    // Content-hashed names never change meaning: cache them for a year.
    immutable: true,
    maxAge: '365d',
    index: false,
    // One route (/assets/*), not one per file found at startup.
    wildcard: true,
  });
  app.get(WEB_PAGE_ROUTES.buyer, page('index.html'));
  app.get(WEB_PAGE_ROUTES.admin, page('admin.html'));
}
