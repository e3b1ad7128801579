import fc from 'fast-check';
import type { InjectOptions } from 'fastify';
import { beforeAll, describe, expect, it } from 'vitest';
import { openTestApi, TEST_ADMIN_TOKEN } from './support/context.js';
import { recordFigures } from './support/figures.js';
import { createShow, call, waitForDecision } from './support/http.js';
import { routeTable, type Route } from './support/route-table.js';

/**
 * Every route of the route table (so routes added later are fuzzed too) gets generated bad
 * input: malformed JSON, wrong types, huge and negative numbers, long and unicode strings,
 * extra fields, oversized bodies, bad ids, odd headers and query strings. Whatever arrives,
 * the answer is never a 5xx, and every 4xx is JSON `{ error: { code, message } }`.
 */

const BODY_LIMIT = 16_384;
const RUNS_PER_ROUTE = Number(process.env.FUZZ_RUNS ?? 200);
/** The queue board's many routes are admin-only plumbing: fewer runs each. */
const RUNS_PER_BOARD_ROUTE = Math.ceil(RUNS_PER_ROUTE / 6);

const { ctx, api } = await openTestApi({ BODY_LIMIT_BYTES: String(BODY_LIMIT) });
const known = { showId: '', heldId: '', queuedId: '' };

beforeAll(async () => {
  const show = await createShow(api.app, { sections: [{ name: 'Floor', rows: 3, seats_per_row: 10, price_cents: 100 }] });
  known.showId = show.id;
  // Real ids, so generated requests also reach the paths behind a successful lookup.
  const held = await call(api.app, 'POST', '/booking', { body: { show_id: show.id, customer_email: 'held@example.com', seat_count: 1 } });
  const worker = await ctx.startWorker();
  await waitForDecision(api.app, held.body.id);
  await worker.close();
  const queued = await call(api.app, 'POST', '/booking', { body: { show_id: show.id, customer_email: 'queued@example.com', seat_count: 1 } });
  known.heldId = held.body.id;
  known.queuedId = queued.body.id;
});

// ---------------------------------------------------------------------------------------------
// Generators

const nasty = fc.constantFrom(
  '',
  ' ',
  '\u0000',
  '\uFEFF',
  '\uD800',
  '../../etc/passwd',
  "' OR 1=1 --",
  '<script>alert(1)</script>',
  '{{7*7}}',
  '${jndi:ldap://x}',
  'ＡＢＣ',
  '🎟️'.repeat(50),
  'null',
  'NaN',
  '-0',
  '1e309',
  'GA',
  'Floor-A-1',
  'Floor-Z-99',
);
const longString = fc.integer({ min: 1_000, max: 20_000 }).map((length) => 'x'.repeat(length));
const weirdString = fc.oneof(fc.string(), fc.string({ unit: 'binary' }), fc.string({ unit: 'grapheme' }), nasty, longString);
const weirdNumber = fc.oneof(
  fc.integer(),
  fc.double(),
  fc.constantFrom(0, -1, -0, 0.5, 11, 101, 1e308, -1e308, 2 ** 31, 2 ** 53 + 1, Number.MAX_SAFE_INTEGER, 1e-320),
);
const scalar = fc.oneof(weirdString, weirdNumber, fc.boolean(), fc.constant(null));
const anyValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: scalar },
  { weight: 1, arbitrary: fc.array(scalar, { maxLength: 20 }) },
  { weight: 1, arbitrary: fc.dictionary(fc.string({ maxLength: 10 }), scalar, { maxKeys: 5 }) },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 4 }) },
);
/** A plausible value or a bad one, so validation is passed sometimes and later checks run. */
const maybe = <T>(good: fc.Arbitrary<T>) => fc.oneof(good, anyValue);
const extraFields = fc.dictionary(fc.string({ minLength: 1, maxLength: 20 }), anyValue, { maxKeys: 3 });

const uuidOrKnown = () => fc.oneof(fc.uuid(), fc.constantFrom(known.showId, known.heldId, known.queuedId));

const bookingBody = () =>
  fc
    .tuple(
      fc.record(
        {
          show_id: maybe(uuidOrKnown()),
          customer_email: maybe(fc.emailAddress()),
          seat_count: maybe(fc.integer({ min: 1, max: 10 })),
          section: maybe(fc.constantFrom('Floor', 'GA', 'VIP')),
          seats: maybe(fc.array(fc.constantFrom('Floor-A-1', 'Floor-A-2', 'Floor-C-10', 'Floor-D-1', 'A-1'), { maxLength: 12 })),
        },
        { requiredKeys: [] },
      ),
      fc.option(extraFields, { nil: undefined }),
    )
    .map(([body, extra]) => ({ ...extra, ...body }));

/**
 * ISO date-times that pass the format check but not necessarily the calendar: years at the ends
 * of 0000..9999 and offsets up to ±23:59, so a UTC conversion can leave Postgres' and JS's
 * ranges (0000-01-01T00:00:00Z, 9999-12-31T23:00:00-14:00 once answered 500).
 */
const pad = (value: number, width = 2) => String(value).padStart(width, '0');
const edgeYear = fc.oneof(fc.integer({ min: 0, max: 9_999 }), fc.integer({ min: 0, max: 99 }), fc.integer({ min: 9_900, max: 9_999 }), fc.constantFrom(0, 1, 1969, 1970, 9_999));
const offset = fc.oneof(
  fc.constant('Z'),
  fc.tuple(fc.constantFrom('+', '-'), fc.oneof(fc.integer({ min: 0, max: 23 }), fc.constantFrom(14, 23)), fc.integer({ min: 0, max: 59 })).map(([sign, hours, minutes]) => `${sign}${pad(hours)}:${pad(minutes)}`),
);
const clock = fc
  .tuple(fc.integer({ min: 0, max: 23 }), fc.integer({ min: 0, max: 59 }), fc.integer({ min: 0, max: 59 }), fc.option(fc.integer({ min: 0, max: 999 }), { nil: undefined }), offset)
  .map(([hour, minute, second, millis, zone]) => `T${pad(hour)}:${pad(minute)}:${pad(second)}${millis === undefined ? '' : `.${pad(millis, 3)}`}${zone}`);
const anyDay = fc.tuple(edgeYear, fc.integer({ min: 1, max: 12 }), fc.integer({ min: 1, max: 31 })).map(([year, month, day]) => `${pad(year, 4)}-${pad(month)}-${pad(day)}`);
/** The first and last days an offset can push out of range. */
const calendarEnd = fc.constantFrom('0000-01-01', '0001-01-01', '1969-12-31', '1970-01-01', '9999-12-31');
const isoDateTime = fc.tuple(fc.oneof(anyDay, calendarEnd), clock).map(([day, time]) => day + time);
/** Text with a control character (NUL included) or a lone surrogate somewhere in it. */
const hostileText = fc.oneof(
  fc.tuple(fc.string({ maxLength: 10 }), fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 0x9f }).filter((code) => code < 0x20 || code >= 0x7f)).map((code) => String.fromCharCode(code)), fc.string({ maxLength: 10 })).map((parts) => parts.join('')),
  fc.tuple(fc.string({ maxLength: 10 }), fc.integer({ min: 0xd800, max: 0xdfff }).map((code) => String.fromCharCode(code))).map((parts) => parts.join('')),
  fc.string({ unit: 'binary', minLength: 1, maxLength: 30 }),
);

/** A body valid in shape, with hostile dates and names: these reach the database. */
const plausibleShowBody = () =>
  fc.record({
    name: fc.oneof(fc.string({ minLength: 1, maxLength: 30 }), hostileText),
    start_time: fc.oneof(isoDateTime, fc.date({ noInvalidDate: true }).map((date) => date.toISOString())),
    total_seats: fc.integer({ min: 1, max: 50 }),
  });

const arbitraryShowBody = () =>
  fc.record(
    {
      name: maybe(fc.oneof(fc.string({ minLength: 1, maxLength: 30 }), hostileText)),
      start_time: maybe(fc.oneof(isoDateTime, fc.date({ noInvalidDate: true }).map((date) => date.toISOString()))),
      total_seats: maybe(fc.integer({ min: 1, max: 50 })),
      sections: maybe(
        fc.array(
          fc.record(
            {
              name: maybe(fc.constantFrom('VIP', 'Floor', 'Balcony')),
              rows: maybe(fc.integer({ min: 1, max: 3 })),
              seats_per_row: maybe(fc.integer({ min: 1, max: 5 })),
              price_cents: maybe(fc.integer({ min: 0, max: 10_000 })),
            },
            { requiredKeys: [] },
          ),
          { maxLength: 4 },
        ),
      ),
    },
    { requiredKeys: [] },
  );

const showBody = () => fc.oneof({ weight: 2, arbitrary: plausibleShowBody() }, { weight: 1, arbitrary: arbitraryShowBody() });

/** Raw bodies that are not JSON at all, or JSON that only a lenient parser would take. */
const rawBody = fc.oneof(
  fc.string(),
  fc.string({ unit: 'binary' }),
  fc.jsonValue().map((value) => {
    const text = JSON.stringify(value) ?? 'null';
    return text.slice(0, Math.max(1, Math.floor(text.length / 2)));
  }),
  fc.constantFrom(
    '{',
    '{"show_id":',
    '{"a":1,}',
    "{'single':'quotes'}",
    '{"seat_count": 1e400}',
    '{"seat_count": 123456789012345678901234567890}',
    '{"seat_count": -0}',
    '{"seat_count": 01}',
    '{"__proto__": {"admin": true}}',
    '{"constructor": {"prototype": {"polluted": true}}}',
    'null',
    '[]',
    '"string"',
    'true',
  ),
  fc.integer({ min: 100, max: 5_000 }).map((depth) => '['.repeat(depth) + ']'.repeat(depth)),
  fc.integer({ min: 100, max: 2_000 }).map((depth) => '{"a":'.repeat(depth) + '1' + '}'.repeat(depth)),
  fc.integer({ min: BODY_LIMIT + 1, max: BODY_LIMIT * 4 }).map((size) => JSON.stringify({ name: 'x'.repeat(size) })),
);

/** Header values a client can actually send (no CR, LF or NUL). */
const headerValue = fc.oneof(
  fc.string({ maxLength: 300 }).filter((value) => /^[\t\x20-\x7e]*$/.test(value)),
  fc.constantFrom('', ' ', 'x'.repeat(8_000), 'Bearer', 'Bearer ', `Bearer ${TEST_ADMIN_TOKEN}x`, 'Basic Og==', '\u00ff\u00fe'),
);
const contentType = fc.oneof(
  fc.constantFrom(
    'application/json',
    'application/json; charset=utf-8',
    'application/json; charset=utf-16',
    'APPLICATION/JSON',
    'text/plain',
    'application/x-www-form-urlencoded',
    'multipart/form-data; boundary=x',
    'application/xml',
    'application/json, text/plain',
    '*/*',
  ),
  headerValue,
);

type FuzzRequest = { pathValue: string; query: string; body: { kind: 'json'; value: unknown } | { kind: 'raw'; text: string } | { kind: 'none' }; headers: Record<string, string>; admin: boolean };

/** Percent-encodes any string; lone surrogates (not encodable) become U+FFFD. */
const encode = (text: string) => encodeURIComponent(text.replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, '\uFFFD'));

/** A path segment: a real id, a random UUID, anything else percent-encoded, or raw nastiness. */
const pathValue = fc.oneof(
  { weight: 3, arbitrary: uuidOrKnown() },
  { weight: 4, arbitrary: weirdString.map(encode) },
  { weight: 1, arbitrary: fc.constantFrom('%', '%zz', '%E0%A4%A', '..', '%2e%2e', '.', '%00', '%FF', 'bookings', 'maintenance', 'x'.repeat(150)) },
);
const query = fc.oneof(
  fc.constant(''),
  fc.dictionary(fc.string({ minLength: 1, maxLength: 10 }), weirdString, { maxKeys: 4 }).map((entries) =>
    Object.entries(entries)
      .map(([key, value]) => `${encode(key)}=${encode(value)}`)
      .join('&'),
  ),
  fc.constantFrom('a=1&a=2', '__proto__[x]=1', '=', '&&&', '%zz=1'),
  // The list routes' own parameters, good and bad.
  fc
    .record(
      {
        limit: fc.oneof(fc.integer({ min: -5, max: 300 }).map(String), weirdString),
        cursor: fc.oneof(weirdString, fc.string().map((text) => Buffer.from(text).toString('base64url')), fc.constant(Buffer.from('["2030-01-01T00:00:00.000Z","x"]').toString('base64url'))),
        when: fc.oneof(fc.constantFrom('upcoming', 'past', 'all'), weirdString),
        show_id: fc.oneof(fc.uuid(), weirdString),
        email: fc.oneof(fc.emailAddress(), hostileText, weirdString),
        status: fc.oneof(fc.constantFrom('HELD', 'CONFIRMED', 'FAILED', 'EXPIRED', 'CANCELLED', 'QUEUED'), weirdString),
      },
      { requiredKeys: [] },
    )
    .map((entries) =>
      Object.entries(entries)
        .map(([key, value]) => `${key}=${encode(value)}`)
        .join('&'),
    ),
);
const headers = fc.record(
  {
    'content-type': contentType,
    'idempotency-key': headerValue,
    authorization: headerValue,
    'x-request-id': headerValue,
    accept: headerValue,
    'content-encoding': fc.constantFrom('gzip', 'br', 'identity', 'x-unknown'),
  },
  { requiredKeys: [] },
);

function requestFor(route: Route): fc.Arbitrary<FuzzRequest> {
  const structured =
    route.path === '/booking' ? bookingBody() : route.path === '/admin/shows' ? showBody() : route.path.endsWith('/confirm') ? fc.record({ payment: maybe(fc.constantFrom('success', 'fail')) }, { requiredKeys: [] }) : anyValue;
  const body = fc.oneof(
    { weight: 3, arbitrary: structured.map((value) => ({ kind: 'json' as const, value })) },
    { weight: 1, arbitrary: anyValue.map((value) => ({ kind: 'json' as const, value })) },
    { weight: 2, arbitrary: rawBody.map((text) => ({ kind: 'raw' as const, text })) },
    { weight: 1, arbitrary: fc.constant({ kind: 'none' as const }) },
  );
  return fc.record({ pathValue, query, body, headers, admin: fc.boolean() });
}

// ---------------------------------------------------------------------------------------------

const tally = { requests: 0, byStatus: {} as Record<string, number>, byKind: { json: 0, raw: 0, none: 0 }, failures: [] as string[] };

function toInject(route: Route, request: FuzzRequest): InjectOptions {
  const url = route.path.replace(/:\w+/g, request.pathValue).replace(/\*/g, request.pathValue) + (request.query ? `?${request.query}` : '');
  const headers: Record<string, string> = { ...request.headers };
  if (request.admin) headers.authorization = `Bearer ${TEST_ADMIN_TOKEN}`;
  const withBody = route.method !== 'GET' && route.method !== 'HEAD';
  let payload: string | undefined;
  if (withBody && request.body.kind === 'json') payload = JSON.stringify(request.body.value) ?? 'null';
  if (withBody && request.body.kind === 'raw') payload = request.body.text;
  if (payload !== undefined && headers['content-type'] === undefined) headers['content-type'] = 'application/json';
  return { method: route.method as 'GET', url, headers, ...(payload !== undefined ? { payload } : {}) };
}

/** The promise under test: no 5xx, and a 4xx always in our error shape. */
function problemWith(status: number, contentTypeHeader: string | undefined, text: string): string | null {
  if (status >= 500) return `status ${status}`;
  if (status < 400) return null;
  if (!String(contentTypeHeader ?? '').startsWith('application/json')) return `${status} with content-type ${contentTypeHeader}`;
  try {
    const body = JSON.parse(text) as { error?: { code?: unknown; message?: unknown } };
    if (typeof body.error?.code !== 'string' || typeof body.error.message !== 'string') return `${status} without { error: { code, message } }`;
  } catch {
    return `${status} with a body that is not JSON`;
  }
  return null;
}

describe('fuzzing every route', () => {
  it('no generated input gets a 5xx, and every 4xx is a JSON error with code and message', async () => {
    const routes = routeTable(api.app).filter((route) => route.method !== 'HEAD');
    expect(routes.length).toBeGreaterThan(15);
    for (const route of routes) {
      const board = route.path.startsWith('/admin/queues');
      await fc.assert(
        fc.asyncProperty(requestFor(route), async (request) => {
          const options = toInject(route, request);
          const response = await api.app.inject(options);
          tally.requests += 1;
          tally.byKind[request.body.kind] += 1;
          tally.byStatus[response.statusCode] = (tally.byStatus[response.statusCode] ?? 0) + 1;
          const problem = problemWith(response.statusCode, response.headers['content-type'] as string | undefined, response.body);
          if (problem && tally.failures.length < 10) tally.failures.push(`${route.method} ${route.path}: ${problem}: ${response.body.slice(0, 200)}`);
          return problem === null;
        }),
        { numRuns: board ? RUNS_PER_BOARD_ROUTE : RUNS_PER_ROUTE },
      ).catch((error: Error) => {
        throw new Error(`${route.method} ${route.path}\n${tally.failures.join('\n')}\n${error.message.split('\n').slice(0, 3).join('\n')}`);
      });
    }
    const serverErrors = Object.entries(tally.byStatus).filter(([status]) => Number(status) >= 500).reduce((sum, [, count]) => sum + count, 0);
    recordFigures('fuzz', { routes: routes.length, runs_per_route: RUNS_PER_ROUTE, requests: tally.requests, server_errors: serverErrors, by_status: tally.byStatus, body_kinds: tally.byKind });
    expect(tally.failures).toEqual([]);
    expect(serverErrors).toBe(0);
  }, 240_000);
});

describe('fuzzing show creation with well-formed bodies', () => {
  it('hostile dates and names are 201 or a 400 naming start_time or name, never a 5xx', async () => {
    await fc.assert(
      fc.asyncProperty(plausibleShowBody(), async (body) => {
        const response = await api.app.inject({
          method: 'POST',
          url: '/admin/shows',
          headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}`, 'content-type': 'application/json' },
          payload: JSON.stringify(body),
        });
        if (response.statusCode === 201) return true;
        const fields = response.statusCode === 400 ? (response.json().error.details ?? []).map((detail: { field: string }) => detail.field) : [];
        expect(fields.length > 0 && fields.every((field: string) => field === 'start_time' || field === 'name'), `${response.statusCode} ${response.body} for ${JSON.stringify(body)}`).toBe(true);
        return true;
      }),
      {
        numRuns: RUNS_PER_ROUTE,
        // The shapes that once answered 500, always tried first.
        examples: [
          [{ name: 'Year zero', start_time: '0000-01-01T00:00:00Z', total_seats: 1 }],
          [{ name: 'Year 10000 in UTC', start_time: '9999-12-31T23:00:00-14:00', total_seats: 1 }],
          [{ name: 'Late\u0000show', start_time: '2030-01-01T20:00:00Z', total_seats: 1 }],
        ],
      },
    );
  }, 120_000);
});
