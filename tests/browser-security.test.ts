import { describe, expect, it } from 'vitest';
import type { RunningApi } from '../services/api/server.js';
import { openTestApi, TEST_ADMIN_TOKEN } from './support/context.js';

/** What browsers are told: security headers on every answer, CORS only for configured origins. */

const { ctx, api } = await openTestApi();

const board = `Basic ${Buffer.from(`admin:${TEST_ADMIN_TOKEN}`).toString('base64')}`;

function directives(csp: unknown): Map<string, string> {
  expect(typeof csp).toBe('string');
  return new Map(
    (csp as string)
      .split(';')
      .map((part) => part.trim())
      .filter(Boolean)
      .map((part) => {
        const [name = '', ...values] = part.split(/\s+/);
        return [name, values.join(' ')] as const;
      }),
  );
}

describe('security headers', () => {
  it.each([
    ['GET', '/health', 200],
    ['GET', '/shows', 200],
    ['GET', '/docs/', 200],
    ['GET', '/docs/json', 200],
    ['GET', '/admin/queues', 401],
    ['GET', '/no-such-route', 404],
    ['GET', '/shows/not-a-uuid', 400],
    ['POST', '/booking', 400],
    ['GET', '/shows/%E0%A4%A', 400],
  ] as const)('%s %s (%i) carries them', async (method, url, status) => {
    const response = await api.app.inject({ method, url, ...(method === 'POST' ? { payload: { show_id: 'x' } } : {}) });
    expect(response.statusCode).toBe(status);
    const policy = directives(response.headers['content-security-policy']);
    expect(policy.get('frame-ancestors')).toBe("'none'");
    expect(policy.get('default-src')).toBe("'self'");
    expect(policy.get('object-src')).toBe("'none'");
    expect(policy.has('upgrade-insecure-requests')).toBe(false);
    expect(response.headers['x-frame-options']).toBe('DENY');
    expect(response.headers['x-content-type-options']).toBe('nosniff');
    expect(response.headers['strict-transport-security']).toMatch(/max-age=\d+/);
    expect(response.headers['referrer-policy']).toBe('no-referrer');
    expect(response.headers['x-powered-by']).toBeUndefined();
  });

  it('JSON answers carry the short set, pages and their assets the whole of it', async () => {
    const pageOnly = ['cross-origin-opener-policy', 'origin-agent-cluster', 'x-xss-protection', 'x-download-options', 'x-dns-prefetch-control', 'x-permitted-cross-domain-policies'];
    const json = await api.app.inject({ method: 'GET', url: '/shows' });
    expect(json.headers['content-type']).toMatch(/^application\/json/);
    expect(directives(json.headers['content-security-policy'])).toEqual(new Map([['default-src', "'self'"], ['frame-ancestors', "'none'"], ['object-src', "'none'"]]));
    expect(json.headers['cross-origin-resource-policy']).toBe('same-origin');
    for (const name of pageOnly) expect(json.headers[name]).toBeUndefined();

    for (const url of ['/docs/', '/docs/static/swagger-ui.css']) {
      const page = await api.app.inject({ method: 'GET', url });
      expect(page.statusCode).toBe(200);
      expect(page.headers['content-type']).not.toMatch(/json/);
      expect(directives(page.headers['content-security-policy']).get('script-src')).toBe("'self'");
      for (const name of pageOnly) expect(page.headers[name]).toBeDefined();
    }
  });

  it("the pages' own assets are allowed: Swagger UI's and the queue board's scripts are same-origin, their styles permitted", async () => {
    const docs = await api.app.inject({ method: 'GET', url: '/docs/' });
    const boardPage = await api.app.inject({ method: 'GET', url: '/admin/queues', headers: { authorization: board } });
    expect(boardPage.statusCode).toBe(200);
    for (const page of [docs, boardPage]) {
      const policy = directives(page.headers['content-security-policy']);
      // Every script the page loads is a relative or same-origin URL, and it has no inline script to run.
      const scripts = [...page.body.matchAll(/<script([^>]*)>/g)].map((match) => match[1]!);
      expect(scripts.length).toBeGreaterThan(0);
      for (const attributes of scripts) {
        const src = /src="([^"]+)"/.exec(attributes)?.[1];
        if (src === undefined) expect(attributes).toMatch(/type="application\/json"/);
        else expect(src).not.toMatch(/^(https?:)?\/\//);
      }
      expect(policy.get('script-src')).toBe("'self'");
      expect(policy.get('style-src')).toContain("'unsafe-inline'");
      // The board's web font stylesheet is fetched over https.
      expect(policy.get('style-src')).toContain('https:');
      expect(policy.get('font-src')).toContain('https:');
    }
  });
});

describe('CORS', () => {
  const preflight = (target: RunningApi, origin: string) =>
    target.app.inject({
      method: 'OPTIONS',
      url: '/booking',
      headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type,idempotency-key' },
    });

  it('is off by default: no origin is allowed', async () => {
    const response = await preflight(api, 'https://tickets.example.com');
    expect(response.headers['access-control-allow-origin']).toBeUndefined();
    const read = await api.app.inject({ method: 'GET', url: '/shows', headers: { origin: 'https://tickets.example.com' } });
    expect(read.statusCode).toBe(200);
    expect(read.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('CORS_ORIGINS allows exactly the listed origins, preflight included', async () => {
    const open = await ctx.startApi({ CORS_ORIGINS: 'https://tickets.example.com, http://localhost:5173' });
    const allowed = await preflight(open, 'https://tickets.example.com');
    expect(allowed.statusCode).toBe(204);
    expect(allowed.headers['access-control-allow-origin']).toBe('https://tickets.example.com');
    expect(String(allowed.headers['access-control-allow-methods'])).toContain('POST');
    expect(String(allowed.headers['access-control-allow-headers']).toLowerCase()).toContain('idempotency-key');
    expect(allowed.headers['vary']).toMatch(/Origin/i);

    for (const stranger of ['https://evil.example.com', 'https://tickets.example.com.evil.example', 'null']) {
      const refused = await preflight(open, stranger);
      expect(refused.headers['access-control-allow-origin']).toBeUndefined();
    }
    const read = await open.app.inject({ method: 'GET', url: '/shows', headers: { origin: 'http://localhost:5173' } });
    expect(read.headers['access-control-allow-origin']).toBe('http://localhost:5173');
    expect(String(read.headers['access-control-expose-headers'])).toMatch(/Retry-After/);
    // Security headers stay on CORS answers.
    expect(directives(allowed.headers['content-security-policy']).get('frame-ancestors')).toBe("'none'");
  });

  it('a CORS_ORIGINS entry that is not an origin stops startup naming the variable', () => {
    for (const bad of ['tickets.example.com', 'https://tickets.example.com/', 'https://a.example.com/path', '*']) {
      expect(() => ctx.configWith({ CORS_ORIGINS: bad })).toThrow(/CORS_ORIGINS: must be a comma-separated list of origins/);
    }
  });
});
