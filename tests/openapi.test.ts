import { beforeAll, describe, expect, it } from 'vitest';
import { openTestApi } from './support/context.js';
import { call, createShow } from './support/http.js';
import { routeTable } from './support/route-table.js';

const { api } = await openTestApi();

type Operation = {
  summary?: string;
  tags?: string[];
  parameters?: Array<{ in: string; name: string }>;
  requestBody?: { content: Record<string, { schema: unknown }> };
  responses: Record<
    string,
    { description: string; content?: Record<string, { schema: unknown }>; headers?: Record<string, { description?: string; schema: unknown }> }
  >;
  security?: Array<Record<string, string[]>>;
};
type Document = {
  openapi: string;
  info: { title: string; version: string };
  tags?: Array<{ name: string; description?: string }>;
  paths: Record<string, Record<string, Operation>>;
  components: { securitySchemes: Record<string, { type: string; scheme: string }>; schemas?: Record<string, unknown> };
};

/** UI plumbing (documentation pages, the queue board, the web pages and their assets) is served but deliberately not documented. */
const UNDOCUMENTED = /^\/(docs|admin\/queues|assets)(\/|$)|^\/(admin)?$/;

const toOpenApiPath = (url: string) => url.replace(/:(\w+)/g, '{$1}');

describe('OpenAPI document', () => {
  let doc: Document;
  beforeAll(async () => {
    const reply = await call<Document>(api.app, 'GET', '/docs/json');
    expect(reply.status).toBe(200);
    doc = reply.body;
  });

  it('is OpenAPI 3 with the admin bearer scheme declared', () => {
    expect(doc.openapi).toMatch(/^3\.\d+\.\d+$/);
    expect(doc.info.title).toBeTruthy();
    expect(doc.components.securitySchemes.adminToken).toMatchObject({ type: 'http', scheme: 'bearer' });
  });

  it('documents every route the app serves, each with a summary and described responses', () => {
    const routes = routeTable(api.app).filter((route) => route.method !== 'HEAD' && !UNDOCUMENTED.test(route.path));
    // Guard against a parser that silently finds nothing.
    expect(routes.map((route) => `${route.method} ${route.path}`)).toEqual(
      expect.arrayContaining(['GET /health', 'GET /ready', 'GET /metrics', 'POST /booking', 'GET /booking/:id/status', 'POST /admin/shows']),
    );
    for (const { method, path: url } of routes) {
      const operation = doc.paths[toOpenApiPath(url)]?.[method.toLowerCase()];
      expect(operation, `${method} ${url} is missing from /docs/json`).toBeDefined();
      expect(operation!.summary, `${method} ${url} has no summary`).toBeTruthy();
      const statuses = Object.keys(operation!.responses ?? {});
      expect(statuses.some((status) => /^2\d\d$/.test(status)), `${method} ${url} documents no 2xx response`).toBe(true);
      for (const status of statuses) {
        const response = operation!.responses[status]!;
        expect(response.description, `${method} ${url} ${status} has no description`).toBeTruthy();
        // 204 No Content and 304 Not Modified have no body by definition.
        if (status !== '204' && status !== '304') expect(response.content, `${method} ${url} ${status} has no schema`).toBeDefined();
      }
      // Path parameters are declared and described by the params schema.
      for (const name of [...url.matchAll(/:(\w+)/g)].map((m) => m[1])) {
        expect(operation!.parameters?.some((p) => p.in === 'path' && p.name === name), `${method} ${url} lacks path param ${name}`).toBe(true);
      }
      // Cancel, pause, resume, refund and closing a list are whole actions: they take no body.
      if (method === 'POST' && !/\/(cancel|pause|resume|refund|waitlist\/close)$/.test(url)) {
        expect(operation!.requestBody?.content['application/json'], `${method} ${url} has no request body schema`).toBeDefined();
      }
    }
    // Nothing documented that the app does not serve.
    const served = new Set(routes.map((route) => `${route.method.toLowerCase()} ${toOpenApiPath(route.path)}`));
    for (const [path, operations] of Object.entries(doc.paths)) {
      for (const method of Object.keys(operations)) expect(served.has(`${method} ${path}`), `${method} ${path}`).toBe(true);
    }
  });

  it('documents the errors any route can give (500; 503 except on /health and /metrics)', () => {
    for (const [path, operations] of Object.entries(doc.paths)) {
      for (const [method, operation] of Object.entries(operations)) {
        expect(operation.responses['500'], `${method} ${path} 500`).toBeDefined();
        if (path !== '/health' && path !== '/metrics') expect(operation.responses['503'], `${method} ${path} 503`).toBeDefined();
      }
    }
  });

  it('files every operation under a declared tag', () => {
    const declared = new Set((doc.tags ?? []).map((tag) => tag.name));
    expect([...declared]).toEqual(expect.arrayContaining(['bookings', 'shows', 'admin', 'ops']));
    for (const [path, operations] of Object.entries(doc.paths)) {
      for (const [method, operation] of Object.entries(operations)) {
        expect(operation.tags?.length, `${method} ${path} has no tag`).toBeGreaterThan(0);
        for (const tag of operation.tags ?? []) expect(declared.has(tag), `${method} ${path}: tag ${tag} is not declared`).toBe(true);
      }
    }
    expect(doc.paths['/booking']!.post!.tags).toEqual(['bookings']);
    expect(doc.paths['/admin/shows']!.post!.tags).toEqual(['admin']);
    expect(doc.paths['/health']!.get!.tags).toEqual(['ops']);
  });

  it('documents 415 on every route that takes a JSON body', () => {
    for (const [path, operations] of Object.entries(doc.paths)) {
      for (const [method, operation] of Object.entries(operations)) {
        if (operation.requestBody) expect(operation.responses['415'], `${method} ${path} 415`).toBeDefined();
      }
    }
    expect(doc.paths['/booking']!.post!.responses['415']).toBeDefined();
  });

  it("documents the 202's Location and Retry-After headers on POST /booking, and the app sends them", async () => {
    const accepted = doc.paths['/booking']!.post!.responses['202']!;
    expect(accepted.content?.['application/json']?.schema).toBeDefined();
    expect(accepted.headers?.Location).toMatchObject({ schema: { type: 'string' } });
    expect(accepted.headers?.Location?.description).toBeTruthy();
    expect(accepted.headers?.['Retry-After']).toMatchObject({ schema: { type: 'string' } });
    expect(accepted.headers?.['Retry-After']?.description).toBeTruthy();

    const show = await createShow(api.app, { total_seats: 5 });
    const booking = await call(api.app, 'POST', '/booking', { body: { show_id: show.id, customer_email: 'docs@example.test', seat_count: 1 } });
    expect(booking.status).toBe(202);
    expect(booking.body).toMatchObject({ status: 'QUEUED', status_url: `/booking/${booking.body.id}/status` });
    expect(booking.headers.location).toBe(booking.body.status_url);
    expect(booking.headers['retry-after']).toMatch(/^\d+$/);
  });

  it('marks admin routes with the bearer scheme and documents their 401', () => {
    const createShow = doc.paths['/admin/shows']!.post!;
    expect(createShow.security).toEqual([{ adminToken: [] }]);
    expect(createShow.responses['401']).toBeDefined();
  });

  it('resolves every $ref', () => {
    const text = JSON.stringify(doc);
    for (const [, ref] of text.matchAll(/"\$ref":"([^"]+)"/g)) {
      expect(ref, `${ref} is not a local component`).toMatch(/^#\/components\/schemas\//);
      expect(doc.components.schemas?.[ref!.split('/').pop()!], `${ref} does not resolve`).toBeDefined();
    }
  });

  it('serves the UI at /docs', async () => {
    const page = await api.app.inject({ method: 'GET', url: '/docs' });
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toMatch(/text\/html/);
    expect(page.body).toContain('swagger-initializer.js');
    const initializer = await api.app.inject({ method: 'GET', url: '/docs/static/swagger-initializer.js' });
    expect(initializer.statusCode).toBe(200);
  });
});
