import { describe, expect, it } from 'vitest';
import { BOOKING_EVENT_TYPES } from '../shared/webhooks/events.js';
import { openTestApi } from './support/context.js';
import { call } from './support/http.js';

/**
 * The admin routes of webhooks: register (the secret shown once), list, delete, deliveries;
 * bad input on every route is a 400 naming the field; in production, internal targets are
 * refused unless WEBHOOK_ALLOWED_HOSTS lists them.
 */

const { ctx, api } = await openTestApi({ DB_POOL_SIZE: '2' });

const register = (body: unknown, app = api.app) => call(app, 'POST', '/admin/webhooks', { body, admin: true });

describe('admin webhooks', () => {
  it('registers a webhook for every event type by default, shows its secret only then, lists and deletes it', async () => {
    const created = await register({ url: 'https://hooks.example.com/ticket-rush' });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ url: 'https://hooks.example.com/ticket-rush', events: [...BOOKING_EVENT_TYPES] });
    expect(created.body.secret).toMatch(/^whsec_[A-Za-z0-9+/]+={0,2}$/);
    expect(Buffer.from(created.body.secret.slice(6), 'base64').length).toBeGreaterThanOrEqual(24);
    const some = await register({ url: 'http://127.0.0.1:9999/hook', events: ['booking.confirmed', 'booking.held'] });
    expect(some.status).toBe(201);
    expect(some.body.events).toEqual(['booking.held', 'booking.confirmed']);

    const list = await call(api.app, 'GET', '/admin/webhooks?limit=1', { admin: true });
    expect(list.status).toBe(200);
    expect(list.body.webhooks).toHaveLength(1);
    expect(JSON.stringify(list.body)).not.toContain('whsec_');
    const second = await call(api.app, 'GET', list.body.next, { admin: true });
    expect([...list.body.webhooks, ...second.body.webhooks].map((hook: { id: string }) => hook.id).sort()).toEqual([created.body.id, some.body.id].sort());
    expect(second.body.next).toBeNull();

    const deliveries = await call(api.app, 'GET', `/admin/webhooks/${created.body.id}/deliveries`, { admin: true });
    expect(deliveries).toMatchObject({ status: 200, body: { deliveries: [], next: null } });

    expect((await call(api.app, 'DELETE', `/admin/webhooks/${created.body.id}`, { admin: true })).body).toEqual({ id: created.body.id, deleted: true });
    expect((await call(api.app, 'DELETE', `/admin/webhooks/${created.body.id}`, { admin: true })).status).toBe(404);
    expect((await call(api.app, 'GET', `/admin/webhooks/${created.body.id}/deliveries`, { admin: true })).status).toBe(404);
    await call(api.app, 'DELETE', `/admin/webhooks/${some.body.id}`, { admin: true });
  });

  it('answers 400 naming the field for bad input on every route, and 401 without the token', async () => {
    const cases: Array<[unknown, string, RegExp]> = [
      [{}, 'url', /./],
      [{ url: 'not a url' }, 'url', /absolute http\(s\) URL/],
      [{ url: 'ftp://example.com/x' }, 'url', /http or https/],
      [{ url: 'javascript:alert(1)' }, 'url', /http or https/],
      [{ url: 'https://user:pw@example.com/' }, 'url', /credentials/],
      [{ url: `https://example.com/${'x'.repeat(2_100)}` }, 'url', /2048/],
      [{ url: 42 }, 'url', /./],
      [{ url: 'https://example.com', events: [] }, 'events', /at least one/],
      [{ url: 'https://example.com', events: ['booking.sold'] }, 'events[0]', /must be one of/],
      [{ url: 'https://example.com', events: ['booking.held', 'booking.held'] }, 'events', /repeat/],
      [{ url: 'https://example.com', events: 'booking.held' }, 'events', /./],
      [{ url: 'https://example.com', secret: 'mine' }, '', /secret/],
    ];
    for (const [body, field, problem] of cases) {
      const reply = await register(body);
      expect(reply.status, JSON.stringify(body)).toBe(400);
      expect(reply.body.error.code).toBe('VALIDATION_ERROR');
      const detail = reply.body.error.details.find((entry: { field: string }) => entry.field === field) ?? reply.body.error.details[0];
      expect(detail.field, JSON.stringify(reply.body)).toBe(field || detail.field);
      expect(`${detail.field} ${detail.problem}`, JSON.stringify(reply.body)).toMatch(problem);
    }
    expect((await call(api.app, 'POST', '/admin/webhooks', { rawBody: '{"url":', admin: true })).body.error.code).toBe('INVALID_JSON');
    for (const url of ['/admin/webhooks/not-a-uuid', '/admin/webhooks/not-a-uuid/deliveries']) {
      const method = url.endsWith('deliveries') ? 'GET' : 'DELETE';
      const reply = await call(api.app, method, url, { admin: true });
      expect(reply.status).toBe(400);
      expect(reply.body.error.details[0].field).toBe('id');
    }
    for (const query of ['limit=0', 'limit=201', 'limit=x', 'cursor=nope']) {
      for (const path of ['/admin/webhooks', '/admin/webhooks/00000000-0000-4000-8000-000000000000/deliveries']) {
        const reply = await call(api.app, 'GET', `${path}?${query}`, { admin: true });
        expect(reply.status, `${path}?${query}`).toBe(400);
        expect(['limit', 'cursor']).toContain(reply.body.error.details[0].field);
      }
    }
    expect((await call(api.app, 'GET', '/admin/webhooks/00000000-0000-4000-8000-000000000000/deliveries', { admin: true })).status).toBe(404);
    for (const [method, url] of [
      ['POST', '/admin/webhooks'],
      ['GET', '/admin/webhooks'],
      ['DELETE', '/admin/webhooks/00000000-0000-4000-8000-000000000000'],
      ['GET', '/admin/webhooks/00000000-0000-4000-8000-000000000000/deliveries'],
    ] as const) {
      expect((await call(api.app, method, url, { body: { url: 'https://example.com' } })).status).toBe(401);
    }
  });

  it('in production refuses loopback, private and link-local targets unless WEBHOOK_ALLOWED_HOSTS lists them', async () => {
    const production = await ctx.startApi({ NODE_ENV: 'production' });
    for (const url of ['http://127.0.0.1:8080/x', 'http://localhost:8080/x', 'http://10.0.0.5/x', 'http://192.168.1.10/x', 'http://169.254.169.254/latest/meta-data', 'http://[::1]/x', 'http://[fe80::1]/x']) {
      const reply = await register({ url }, production.app);
      expect(reply.status, url).toBe(400);
      expect(reply.body.error.details[0].field).toBe('url');
      expect(reply.body.error.details[0].problem).toMatch(/loopback, private or link-local/);
    }
    const allowing = await ctx.startApi({ NODE_ENV: 'production', WEBHOOK_ALLOWED_HOSTS: '127.0.0.1,10.0.0.0/8' });
    expect((await register({ url: 'http://127.0.0.1:8080/x' }, allowing.app)).status).toBe(201);
    expect((await register({ url: 'http://10.1.2.3/x' }, allowing.app)).status).toBe(201);
    expect((await register({ url: 'http://192.168.1.10/x' }, allowing.app)).status).toBe(400);
  });
});
