import type { FastifyInstance } from 'fastify';

/**
 * The app's full route table, read from Fastify's radix-tree printout (common prefixes split
 * as the router stores them, so nested and wildcard routes keep their whole path). Tests that
 * must cover every route use it, so routes added later are covered too.
 */

export type Route = { method: string; path: string };

/** Every (method, path) the app serves, HEAD included, e.g. { method: 'POST', path: '/booking/:id/confirm' }. */
export function routeTable(app: FastifyInstance): Route[] {
  const routes: Route[] = [];
  const prefixes: string[] = [];
  for (const line of app.printRoutes().split('\n')) {
    const start = line.search(/[^\s│├└─]/u);
    if (start < 0) continue;
    // Each tree level indents by four characters ("│   " or "├── ").
    const depth = Math.floor(start / 4);
    const match = /^(.*?)(?: \(([A-Z, ]+)\))?$/.exec(line.slice(start));
    if (!match) continue;
    const path = (depth > 0 ? (prefixes[depth - 1] ?? '') : '') + match[1]!;
    prefixes[depth] = path;
    prefixes.length = depth + 1;
    for (const method of match[2]?.split(',').map((name) => name.trim()) ?? []) routes.push({ method, path });
  }
  return routes;
}
