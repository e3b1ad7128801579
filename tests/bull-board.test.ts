import { describe, expect, it } from 'vitest';
import { openTestApi, TEST_ADMIN_TOKEN } from './support/context.js';
import { routeTable } from './support/route-table.js';

const { ctx, api } = await openTestApi();

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

/** A concrete URL for a route pattern: any queue, any job, a real static file for the wildcard. */
const concrete = (url: string) =>
  url
    .replace(':queueName', 'bookings')
    .replace(':jobId', 'no-such-job')
    .replace(':queueStatus', 'failed')
    .replace(':schedulerId', 'expire-holds')
    .replace(/\*$/, 'static/favicon-32x32.png');

describe('Bull Board at /admin/queues', () => {
  it('refuses every one of its routes (page, API, static files) without the admin token', async () => {
    const routes = routeTable(api.app).filter((route) => route.method !== 'HEAD' && route.path.startsWith('/admin/queues'));
    // The page, its JSON API (read and write) and its static files are all there to be refused.
    expect(routes.length).toBeGreaterThan(30);
    expect(routes.map((route) => `${route.method} ${route.path}`)).toEqual(
      expect.arrayContaining(['GET /admin/queues', 'GET /admin/queues/api/queues', 'PUT /admin/queues/api/queues/pause', 'GET /admin/queues/static/*']),
    );
    const wrong = [undefined, 'Bearer not-the-token-at-all', basic('admin', 'not-the-token'), `Basic ${TEST_ADMIN_TOKEN}`, 'Bearer '];
    for (const route of routes) {
      for (const authorization of wrong) {
        const reply = await api.app.inject({
          method: route.method as 'GET',
          url: concrete(route.path),
          headers: authorization ? { authorization } : {},
          ...(route.method === 'GET' ? {} : { payload: {} }),
        });
        expect(reply.statusCode, `${route.method} ${route.path} with ${authorization ?? 'no auth'}`).toBe(401);
        expect(reply.json()).toMatchObject({ error: { code: 'UNAUTHORIZED' } });
        expect(reply.headers['www-authenticate']).toMatch(/^Basic realm=/);
      }
    }
    // Nothing got through: the pause above was refused.
    const bookingsQueue = (await import('bullmq')).Queue;
    const queue = new bookingsQueue('bookings', { connection: ctx.redis, prefix: ctx.config.QUEUE_PREFIX });
    expect(await queue.isPaused()).toBe(false);
    await queue.close();
  });

  it('serves the board, its API and its assets with the token (Bearer, or Basic for browsers)', async () => {
    for (const authorization of [`Bearer ${TEST_ADMIN_TOKEN}`, basic('admin', TEST_ADMIN_TOKEN), basic('', TEST_ADMIN_TOKEN)]) {
      const page = await api.app.inject({ method: 'GET', url: '/admin/queues', headers: { authorization } });
      expect(page.statusCode).toBe(200);
      expect(page.headers['content-type']).toMatch(/text\/html/);

      const queues = await api.app.inject({ method: 'GET', url: '/admin/queues/api/queues', headers: { authorization } });
      expect(queues.statusCode).toBe(200);
      const names = (queues.json() as { queues: Array<{ name: string }> }).queues.map((queue) => queue.name).sort();
      expect(names).toEqual(['bookings', 'maintenance', 'webhooks']);

      const asset = await api.app.inject({ method: 'GET', url: '/admin/queues/static/favicon-32x32.png', headers: { authorization } });
      expect(asset.statusCode).toBe(200);
    }
  });

  it('does not leak internals when the board fails', async () => {
    const reply = await api.app.inject({
      method: 'GET',
      url: '/admin/queues/api/queues/no-such-queue/no-such-job',
      headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}` },
    });
    expect(reply.statusCode).toBeLessThan(500);
    expect(reply.body).not.toMatch(/at .*\.js:\d+/);
  });

  it('answers 400, not 500, when a field holds a NUL character (the board splits its messages on NUL)', async () => {
    const authorization = `Bearer ${TEST_ADMIN_TOKEN}`;
    const attempts = [
      { method: 'PATCH' as const, url: '/admin/queues/api/queues/maintenance/job-schedulers/expire-holds', payload: JSON.stringify('\u0000') },
      { method: 'PATCH' as const, url: '/admin/queues/api/queues/maintenance/job-schedulers/expire-holds', payload: JSON.stringify({ every: 'a\u0000b' }) },
      { method: 'GET' as const, url: '/admin/queues/api/job-schedulers?queueName=%00' },
      // Nested thousands deep, as a 16 KB body can be: refused by the board, not by a stack overflow.
      { method: 'PUT' as const, url: '/admin/queues/api/queues/maintenance/no-such-job/retry', payload: `${'['.repeat(6000)}"\\u0000"${']'.repeat(6000)}` },
    ];
    for (const attempt of attempts) {
      const reply = await api.app.inject({ ...attempt, headers: { authorization, 'content-type': 'application/json' } });
      expect(reply.statusCode, `${attempt.method} ${attempt.url} ${attempt.payload ?? ''}`).toBe(400);
      expect(reply.json()).toMatchObject({ error: { code: 'INVALID_REQUEST', message: expect.stringContaining('NUL') } });
    }
  });
});
