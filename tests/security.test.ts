import { randomUUID } from 'node:crypto';
import Fastify, { type FastifyInstance } from 'fastify';
import { describe, expect, it } from 'vitest';
import { bearerToken } from '../shared/secrets.js';
import { openTestApi } from './support/context.js';
import { recordFigures } from './support/figures.js';
import { call, createShow, waitForDecision } from './support/http.js';
import { waitUntil } from './support/processes.js';
import { routeTable } from './support/route-table.js';

/**
 * Abuse: admin routes without the token, rate limiting across replicas, load shedding, and
 * what booking ids and status answers give away.
 */

const { ctx, api } = await openTestApi({ HOLD_SECONDS: '60' });
const show: { id: string } = await createShow(api.app, { total_seats: 50 });

/**
 * Routes anyone may call. Every other route must refuse a request without the admin token,
 * so a route added later is protected, or consciously listed here.
 */
const PUBLIC_ROUTES = new Set([
  'GET /health',
  'GET /ready',
  'GET /metrics',
  'GET /docs',
  'GET /docs/',
  'GET /docs/*',
  'GET /docs/json',
  'GET /docs/yaml',
  'GET /docs/static/index.html',
  'GET /docs/static/swagger-initializer.js',
  'GET /docs/static/*',
  'GET /shows',
  'GET /shows/:id',
  'GET /shows/:id/seats',
  'GET /shows/:id/draw',
  'GET /shows/:id/events',
  'GET /booking/:id/events',
  'POST /booking',
  'GET /booking/:id',
  'GET /booking/:id/status',
  'POST /booking/:id/confirm',
  'POST /booking/:id/cancel',
  // The web pages and their assets (services/api/plugins/web-page.ts): the admin page holds no
  // secret, the operator types the token in and each admin call carries it.
  'GET /',
  'GET /admin',
  'GET /assets/*',
]);

const fill = (path: string) => path.replace(/:\w+/g, randomUUID()).replace(/\*/g, 'x');

/** Routes outside PUBLIC_ROUTES that answer anything but 401 to `headers` (none, a wrong token, ...). */
async function unprotectedRoutes(app: FastifyInstance, headers: Record<string, string>): Promise<string[]> {
  const leaks: string[] = [];
  for (const { method, path } of routeTable(app)) {
    // HEAD is answered by the GET route's handler and hooks.
    if (PUBLIC_ROUTES.has(`${method === 'HEAD' ? 'GET' : method} ${path}`)) continue;
    const bodyless = method === 'GET' || method === 'HEAD';
    const response = await app.inject({ method: method as 'GET', url: fill(path), headers, ...(bodyless ? {} : { payload: {} }) });
    const code = method === 'HEAD' ? 'UNAUTHORIZED' : (response.json() as { error?: { code?: string } }).error?.code;
    if (response.statusCode !== 401 || code !== 'UNAUTHORIZED') leaks.push(`${method} ${path} -> ${response.statusCode}`);
  }
  return leaks;
}

describe('bearer tokens', () => {
  // One parser behind the admin routes, the queue board and both /metrics endpoints.
  it('reads the token of `Bearer <token>` (scheme in any case) and nothing else', () => {
    expect(bearerToken(`Bearer ${TOKEN_SAMPLE}`)).toBe(TOKEN_SAMPLE);
    expect(bearerToken(`bearer ${TOKEN_SAMPLE}`)).toBe(TOKEN_SAMPLE);
    expect(bearerToken('Bearer a b')).toBe('a b');
    for (const other of [undefined, '', 'Bearer', 'Bearer ', `Basic ${Buffer.from(`x:${TOKEN_SAMPLE}`).toString('base64')}`, `Token ${TOKEN_SAMPLE}`]) {
      expect(bearerToken(other)).toBeUndefined();
    }
  });
});

const TOKEN_SAMPLE = 'sample-token-0123456789';

describe('admin routes', () => {
  it('every non-public route in the route table answers 401 without a valid admin token', async () => {
    const routes = routeTable(api.app).filter(({ method, path }) => !PUBLIC_ROUTES.has(`${method === 'HEAD' ? 'GET' : method} ${path}`));
    // The walk really sees the admin surface: show creation and the queue board's page, API and assets.
    const names = routes.map((route) => `${route.method} ${route.path}`);
    expect(names).toContain('POST /admin/shows');
    expect(names).toContain('PUT /admin/queues/api/queues/:queueName/obliterate');
    expect(names).toContain('GET /admin/queues/static/*');
    expect(routes.length).toBeGreaterThan(40);
    expect(routes.every((route) => route.path.startsWith('/admin'))).toBe(true);

    const attempts: Array<Record<string, string>> = [{}, { authorization: 'Bearer not-the-admin-token-at-all' }, { authorization: 'Basic dGVzdDp0ZXN0' }, { authorization: `Bearer ${'x'.repeat(4_000)}` }];
    for (const headers of attempts) expect(await unprotectedRoutes(api.app, headers)).toEqual([]);
    recordFigures('security-admin-routes', {
      routes_in_table: routeTable(api.app).length,
      protected_routes_checked: routes.length,
      credentials_tried_per_route: attempts.length,
      requests: routes.length * attempts.length,
      answered_401: routes.length * attempts.length,
    });
    const unauthorized = await call(api.app, 'POST', '/admin/shows', { body: { name: 'x', start_time: '2030-01-01T00:00:00Z', total_seats: 1 } });
    expect(unauthorized.headers['www-authenticate']).toMatch(/^Bearer/);
  });

  it('the walk would catch a new route registered without the admin hook', async () => {
    const app = Fastify();
    app.get('/health', async () => ({ status: 'ok' }));
    app.register(async (admin) => {
      admin.addHook('onRequest', async (_request, reply) => reply.status(401).send({ error: { code: 'UNAUTHORIZED', message: 'no' } }));
      admin.post('/admin/shows', async () => ({}));
    });
    app.delete('/admin/shows/:id', async () => ({ deleted: true }));
    await app.ready();
    expect(await unprotectedRoutes(app, {})).toEqual(['DELETE /admin/shows/:id -> 200']);
    expect(routeTable(app)).toContainEqual({ method: 'DELETE', path: '/admin/shows/:id' });
    await app.close();
  });
});

describe('rate limiting', () => {
  it('counts per client in Redis, so two API replicas share one limit: 429 with Retry-After', async () => {
    const limited = { RATE_LIMIT_PER_MINUTE: '5' };
    const replicas = [await ctx.startApi(limited), await ctx.startApi(limited)];
    const statuses: number[] = [];
    for (let index = 0; index < 5; index++) {
      const response = await replicas[index % 2]!.app.inject({ method: 'GET', url: '/shows', remoteAddress: '10.1.1.1' });
      statuses.push(response.statusCode);
    }
    expect(statuses).toEqual([200, 200, 200, 200, 200]);
    for (const replica of replicas) {
      const refused = await replica.app.inject({ method: 'GET', url: '/shows', remoteAddress: '10.1.1.1' });
      expect(refused.statusCode).toBe(429);
      expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
      expect(refused.json()).toMatchObject({ error: { code: 'RATE_LIMITED', message: expect.any(String) } });
    }
    // Another client is counted apart, and the count lives in Redis (shared by the replicas).
    const other = await replicas[1]!.app.inject({ method: 'GET', url: '/shows', remoteAddress: '10.2.2.2' });
    expect(other.statusCode).toBe(200);
    const keys = await ctx.redis.keys(`${ctx.config.QUEUE_PREFIX}:ratelimit:*`);
    expect(keys.length).toBeGreaterThanOrEqual(2);
    // Health checks are never limited: an orchestrator must see the replica alive.
    const health = await replicas[0]!.app.inject({ method: 'GET', url: '/health', remoteAddress: '10.1.1.1' });
    expect(health.statusCode).toBe(200);
  });
});

describe('load shedding', () => {
  it('answers 503 + Retry-After past MAX_QUEUE_DEPTH without waiting for a worker, and accepts again once workers drain the queue', async () => {
    const shedding = await ctx.startApi({ MAX_QUEUE_DEPTH: '5' });
    const book = (index: number) =>
      call(shedding.app, 'POST', '/booking', { body: { show_id: show.id, customer_email: `shed-${index}@example.com`, seat_count: 1 } });
    const accepted: string[] = [];
    for (let index = 0; index < 5; index++) {
      const reply = await book(index);
      expect(reply.status).toBe(202);
      accepted.push(reply.body.id);
    }
    // No worker runs yet, so this answer cannot have waited for the queue to drain.
    const refused = await book(5);
    expect(refused.status).toBe(503);
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
    expect(refused.body).toMatchObject({ error: { code: 'QUEUE_FULL', message: expect.any(String) } });

    await ctx.startWorker();
    for (const id of accepted) await waitForDecision(shedding.app, id);
    let index = 100;
    const reopened = await waitUntil('the API to accept again', async () => {
      const reply = await book(index++);
      if (reply.status !== 202 && reply.status !== 503) throw new Error(`unexpected ${reply.status}`);
      return reply.status === 202 ? reply : undefined;
    }, 10_000);
    expect(reopened.body.status).toBe('QUEUED');
  });
});

describe('booking ids and what a status reveals', () => {
  const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

  it('booking ids are random UUIDv4, distinct, and not ordered by time or sequence', async () => {
    const ids: string[] = [];
    for (let index = 0; index < 100; index++) {
      const reply = await call(api.app, 'POST', '/booking', {
        body: { show_id: show.id, customer_email: `id-${index}@example.com`, seat_count: 1 },
      });
      expect(reply.status).toBe(202);
      ids.push(reply.body.id);
    }
    expect(ids.every((id) => UUID_V4.test(id))).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
    // Not time-ordered or sequential (a UUIDv7 or a counter would share its leading digits
    // across requests made in the same second): no two ids share their first 8 hex digits.
    // How random the bits are is Node's crypto's business, not this project's.
    expect(new Set(ids.map((id) => id.slice(0, 8))).size).toBe(ids.length);
  });

  it('unknown ids are 404 and malformed ids 400, on every route that takes one', async () => {
    const unknown = randomUUID();
    const malformed = ['abc', '123', `${unknown}x`, unknown.replace(/-/g, ''), "' OR 1=1 --", '%00', '..%2F..%2Fetc', 'x'.repeat(500)];
    const routes: Array<['GET' | 'POST', string, unknown?]> = [
      ['GET', '/booking/:id'],
      ['GET', '/booking/:id/status'],
      ['POST', '/booking/:id/confirm', { payment: 'success' }],
      ['POST', '/booking/:id/cancel', {}],
      ['GET', '/shows/:id'],
      ['GET', '/shows/:id/seats'],
    ];
    for (const [method, path, body] of routes) {
      const missing = await call(api.app, method, path.replace(':id', unknown), { body });
      expect({ path, status: missing.status }).toEqual({ path, status: 404 });
      expect(missing.body).toMatchObject({ error: { code: expect.any(String), message: expect.any(String) } });
      for (const bad of malformed) {
        const reply = await call(api.app, method, path.replace(':id', encodeURIComponent(bad)), { body });
        // Past Fastify's parameter length limit the answer is 414 URI Too Long, also a 4xx.
        const expected = bad.length > 100 ? 414 : 400;
        expect({ path, bad, status: reply.status }).toEqual({ path, bad, status: expected });
        expect(reply.body).toMatchObject({ error: { code: expect.any(String), message: expect.any(String) } });
      }
    }
  });

  it("a status answer carries only the booking's own state: no email, no other booking", async () => {
    await ctx.startWorker();
    const fresh = await createShow(api.app, { total_seats: 10 });
    const book = (email: string) => call(api.app, 'POST', '/booking', { body: { show_id: fresh.id, customer_email: email, seat_count: 2 } });
    const [mine, theirs] = [await book('me@example.com'), await book('someone-else@example.com')];
    const myStatus = await waitForDecision(api.app, mine.body.id);
    const theirStatus = await waitForDecision(api.app, theirs.body.id);
    expect(myStatus.status).toBe('HELD');
    expect(Object.keys(myStatus).every((key) => ['id', 'status', 'position', 'hold_expires_at', 'seats', 'reason', 'updated_at'].includes(key))).toBe(
      true,
    );
    const text = JSON.stringify(myStatus);
    expect(text).not.toContain('someone-else');
    expect(text).not.toContain('me@example.com');
    expect(text).not.toContain(theirs.body.id);
    for (const seat of theirStatus.seats as string[]) expect(myStatus.seats).not.toContain(seat);
    // The public seat map says which seats are taken, never by whom.
    const seats = await call(api.app, 'GET', `/shows/${fresh.id}/seats`);
    const seatText = JSON.stringify(seats.body);
    expect(seatText).not.toContain('@example.com');
    expect(seatText).not.toContain(mine.body.id);
  });
});
