import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { openIntakeTest } from './support/context.js';
import { call, createShow, type Reply } from './support/http.js';

/**
 * Every kind of bad input the contract names gets a 4xx with `{ error: { code, message,
 * details? } }` that names the offending field, and never reaches the queue. The API runs
 * with small limits (4 seats per booking, 4 KiB bodies) so the boundaries are cheap to hit.
 */

const MAX_SEATS = 4;
const BODY_LIMIT = 4_096;

const { ctx, api, queue } = await openIntakeTest({ MAX_SEATS_PER_BOOKING: String(MAX_SEATS), BODY_LIMIT_BYTES: String(BODY_LIMIT) });
const ga = (await createShow(api.app, { total_seats: 20 })).id;
const reserved = (await createShow(api.app, { sections: [{ name: 'VIP', rows: 2, seats_per_row: 3, price_cents: 100 }] })).id;

/** The error body every 4xx must carry, naming `field` in its details or (when it has none) its message. */
function expectNamedError(reply: Reply, status: number, field: string | RegExp) {
  const shown = `${reply.status} ${JSON.stringify(reply.body)}`;
  expect(reply.status, shown).toBe(status);
  expect(String(reply.headers['content-type']), shown).toMatch(/^application\/json/);
  expect(reply.body, shown).toEqual({
    error: expect.objectContaining({ code: expect.stringMatching(/^[A-Z_]+$/), message: expect.any(String) }),
  });
  const { details, message } = reply.body.error;
  if (details !== undefined) {
    expect(details, shown).toEqual(expect.arrayContaining([{ field: expect.any(String), problem: expect.any(String) }]));
  }
  const names = (text: string) => (typeof field === 'string' ? text === field || text.includes(field) : field.test(text));
  const named = (details ?? []).some((d: { field: string }) => names(d.field)) || names(message);
  expect(named, `${shown} should name ${field}`).toBe(true);
}

type Shows = { ga: string; reserved: string };
type BookingCase = [name: string, body: (s: Shows) => unknown, field: string | RegExp];

const valid = (s: Shows) => ({ show_id: s.reserved, customer_email: 'ok@example.com', seat_count: 1 });
const without = (key: string) => (s: Shows) => {
  const body: Record<string, unknown> = valid(s);
  delete body[key];
  return body;
};
const withBody = (more: Record<string, unknown>) => (s: Shows) => ({ ...valid(s), ...more });
const bySeats = (seats: unknown, more: Record<string, unknown> = {}) => (s: Shows) => ({
  show_id: s.reserved,
  customer_email: 'ok@example.com',
  seats,
  ...more,
});

describe('POST /booking', () => {
  const cases: BookingCase[] = [
    // body shape
    ['a JSON array', () => [], 'body'],
    ['JSON null', () => null, 'body'],
    ['a JSON string', () => 'book me', 'body'],
    // missing fields
    ['no show_id', without('show_id'), 'show_id'],
    ['no customer_email', without('customer_email'), 'customer_email'],
    ['neither seat_count nor seats', without('seat_count'), 'seat_count'],
    // wrong types
    ['show_id a number', withBody({ show_id: 42 }), 'show_id'],
    ['show_id not a UUID', withBody({ show_id: 'show-1' }), 'show_id'],
    ['customer_email a number', withBody({ customer_email: 7 }), 'customer_email'],
    ['seat_count a string', withBody({ seat_count: '2' }), 'seat_count'],
    ['seat_count a fraction', withBody({ seat_count: 1.5 }), 'seat_count'],
    ['seat_count null', withBody({ seat_count: null }), 'seat_count'],
    ['section a number', withBody({ section: 3 }), 'section'],
    ['seats a string', bySeats('VIP-A-1'), 'seats'],
    ['seats holding a number', bySeats([1]), 'seats[0]'],
    // bad email
    ['an email without @', withBody({ customer_email: 'not-an-email' }), 'customer_email'],
    ['an email without domain', withBody({ customer_email: 'ada@' }), 'customer_email'],
    ['an empty email', withBody({ customer_email: '' }), 'customer_email'],
    ['an email over 254 characters', withBody({ customer_email: `${'a'.repeat(250)}@example.com` }), 'customer_email'],
    // seat counts
    ['seat_count 0', withBody({ seat_count: 0 }), 'seat_count'],
    ['seat_count -1', withBody({ seat_count: -1 }), 'seat_count'],
    ['seat_count above MAX_SEATS_PER_BOOKING', withBody({ seat_count: MAX_SEATS + 1 }), 'seat_count'],
    ['no seats listed', bySeats([]), 'seats'],
    ['more seats than MAX_SEATS_PER_BOOKING', bySeats(['VIP-A-1', 'VIP-A-2', 'VIP-A-3', 'VIP-B-1', 'VIP-B-2']), 'seats'],
    // both or neither
    ['both seat_count and seats', bySeats(['VIP-A-1'], { seat_count: 1 }), 'seat_count'],
    // labels and sections
    ['a duplicate label', bySeats(['VIP-A-1', 'VIP-A-2', 'VIP-A-1']), 'seats'],
    ['an unknown row', bySeats(['VIP-A-1', 'VIP-C-1']), 'seats[1]'],
    ['an unknown seat number', bySeats(['VIP-A-4']), 'seats[0]'],
    ['an unknown section in a label', bySeats(['Balcony-A-1']), 'seats[0]'],
    ['a label that is no label', bySeats(['front row please']), 'seats[0]'],
    ['an empty label', bySeats(['']), 'seats[0]'],
    ['a GA label past the end', (s) => ({ show_id: s.ga, customer_email: 'ok@example.com', seats: ['21'] }), 'seats[0]'],
    ['a GA label "0"', (s) => ({ show_id: s.ga, customer_email: 'ok@example.com', seats: ['0'] }), 'seats[0]'],
    ['a reserved label on a GA show', (s) => ({ show_id: s.ga, customer_email: 'ok@example.com', seats: ['VIP-A-1'] }), 'seats[0]'],
    ['an unknown section', withBody({ section: 'Balcony' }), 'section'],
    ['a section on a GA show other than GA', (s) => ({ ...valid(s), show_id: s.ga, section: 'VIP' }), 'section'],
    ['a section with specific seats', bySeats(['VIP-A-1'], { section: 'VIP' }), 'section'],
    ['a section name with bad characters', withBody({ section: 'VIP/../x' }), 'section'],
    // extra fields
    ['an extra field', withBody({ price: 1 }), 'price'],
    ['an extra field with seats', bySeats(['VIP-A-1'], { status: 'CONFIRMED' }), 'status'],
  ];

  it.each(cases)('rejects %s naming the field', async (_name, body, field) => {
    const reply = await call(api.app, 'POST', '/booking', { body: body({ ga, reserved }) });
    expectNamedError(reply, 400, field);
  });

  it.each([
    ['truncated JSON', '{"show_id": "'],
    ['single quotes', "{'seat_count': 1}"],
    ['trailing garbage', '{"seat_count": 1} x'],
    ['an empty body', ''],
  ])('rejects malformed JSON (%s) with 400 naming the body', async (_name, rawBody) => {
    const reply = await call(api.app, 'POST', '/booking', { rawBody, headers: { 'content-type': 'application/json' } });
    expectNamedError(reply, 400, /body/i);
  });

  it('rejects a body over BODY_LIMIT_BYTES with 413, and one just under it is judged on its content', async () => {
    const pad = (bytes: number) => {
      const base = JSON.stringify({ ...valid({ ga, reserved }), note: '' });
      return JSON.stringify({ ...valid({ ga, reserved }), note: 'x'.repeat(bytes - base.length) });
    };
    const over = await call(api.app, 'POST', '/booking', { rawBody: pad(BODY_LIMIT + 1) });
    expect(over.status).toBe(413);
    expect(over.body).toEqual({ error: { code: 'PAYLOAD_TOO_LARGE', message: expect.stringMatching(/body/i) } });
    const under = await call(api.app, 'POST', '/booking', { rawBody: pad(BODY_LIMIT) });
    expectNamedError(under, 400, 'note');
  });

  it.each([
    ['text/plain', 'text/plain'],
    ['text/plain with charset', 'text/plain; charset=utf-8'],
    ['XML', 'application/xml'],
    ['a form', 'application/x-www-form-urlencoded'],
    ['multipart', 'multipart/form-data; boundary=x'],
  ])('rejects a %s content-type with 415', async (_name, contentType) => {
    const reply = await call(api.app, 'POST', '/booking', {
      rawBody: JSON.stringify(valid({ ga, reserved })),
      headers: { 'content-type': contentType },
    });
    expect(reply.status).toBe(415);
    expect(reply.body).toEqual({ error: { code: 'UNSUPPORTED_MEDIA_TYPE', message: expect.stringMatching(/content-type/i) } });
  });

  it.each([
    ['empty', ''],
    ['with a space', 'key with space'],
    ['with a control character', 'key\tx'],
    ['over 255 characters', 'k'.repeat(256)],
  ])('rejects an Idempotency-Key %s naming the header', async (_name, key) => {
    const reply = await call(api.app, 'POST', '/booking', { body: valid({ ga, reserved }), headers: { 'idempotency-key': key } });
    expectNamedError(reply, 400, 'Idempotency-Key');
  });
});

describe('malformed ids in every :id route', () => {
  const routes: Array<[method: 'GET' | 'POST', path: (id: string) => string, body?: unknown]> = [
    ['GET', (id) => `/shows/${id}`],
    ['GET', (id) => `/shows/${id}/seats`],
    ['GET', (id) => `/booking/${id}`],
    ['GET', (id) => `/booking/${id}/status`],
    ['POST', (id) => `/booking/${id}/confirm`, { payment: 'success' }],
    ['POST', (id) => `/booking/${id}/cancel`],
  ];
  const ids = ['not-a-uuid', '12345', `${randomUUID()}0`, randomUUID().replace(/^./, 'g'), '%20', "1'%20OR%20'1'='1"];
  const cases = routes.flatMap(([method, path, body]) => ids.map((id) => [`${method} ${path(id)}`, method, path(id), body] as const));

  it.each(cases)('%s is 400 naming id', async (_name, method, url, body) => {
    const reply = await call(api.app, method, url, body ? { body } : {});
    expectNamedError(reply, 400, 'id');
  });
});

describe('POST /booking/:id/confirm body', () => {
  const id = randomUUID();
  it.each([
    ['an empty object', { payment: undefined }, 'payment'],
    ['an unknown payment', { payment: 'maybe' }, 'payment'],
    ['payment a boolean', { payment: true }, 'payment'],
    ['payment in capitals', { payment: 'SUCCESS' }, 'payment'],
    ['an extra field', { payment: 'success', amount: 100 }, 'amount'],
    ['an array', [], 'body'],
  ])('rejects %s naming the field', async (_name, body, field) => {
    const reply = await call(api.app, 'POST', `/booking/${id}/confirm`, { body: Array.isArray(body) ? body : JSON.parse(JSON.stringify(body)) });
    expectNamedError(reply, 400, field);
  });

  it('rejects malformed JSON and a missing body', async () => {
    const malformed = await call(api.app, 'POST', `/booking/${id}/confirm`, { rawBody: '{"payment":', headers: { 'content-type': 'application/json' } });
    expectNamedError(malformed, 400, /body/i);
    const missing = await call(api.app, 'POST', `/booking/${id}/confirm`);
    expectNamedError(missing, 400, /body/i);
  });
});

describe('POST /admin/shows body', () => {
  const show = { name: 'Bad', start_time: '2030-01-01T20:00:00Z' };
  const section = { name: 'VIP', rows: 1, seats_per_row: 2, price_cents: 100 };
  it.each([
    ['no name', { start_time: show.start_time, total_seats: 5 }, 'name'],
    ['a blank name', { ...show, name: '   ', total_seats: 5 }, 'name'],
    ['a numeric name', { ...show, name: 5, total_seats: 5 }, 'name'],
    ['no start_time', { name: 'x', total_seats: 5 }, 'start_time'],
    ['a start_time that is no date', { ...show, start_time: 'tomorrow', total_seats: 5 }, 'start_time'],
    ['a start_time without a zone', { ...show, start_time: '2030-01-01T20:00:00', total_seats: 5 }, 'start_time'],
    ['a start_time in year 0000', { ...show, start_time: '0000-01-01T00:00:00Z', total_seats: 5 }, 'start_time'],
    ['a start_time past year 9999 once in UTC', { ...show, start_time: '9999-12-31T23:00:00-14:00', total_seats: 5 }, 'start_time'],
    ['a start_time before 1970', { ...show, start_time: '1969-12-31T23:59:59Z', total_seats: 5 }, 'start_time'],
    ['a NUL byte in the name', { ...show, name: 'Late\u0000show', total_seats: 5 }, 'name'],
    ['a control character in the name', { ...show, name: 'Bell\u0007', total_seats: 5 }, 'name'],
    ['a lone surrogate in the name', { ...show, name: 'Half \uD83C', total_seats: 5 }, 'name'],
    ['total_seats 0', { ...show, total_seats: 0 }, 'total_seats'],
    ['total_seats a string', { ...show, total_seats: '5' }, 'total_seats'],
    ['total_seats a fraction', { ...show, total_seats: 2.5 }, 'total_seats'],
    ['neither total_seats nor sections', show, 'total_seats'],
    ['both total_seats and sections', { ...show, total_seats: 2, sections: [section] }, 'total_seats'],
    ['no sections', { ...show, sections: [] }, 'sections'],
    ['a section without a name', { ...show, sections: [{ ...section, name: undefined }] }, 'sections[0].name'],
    ['a section name with a slash', { ...show, sections: [{ ...section, name: 'A/B' }] }, 'sections[0].name'],
    ['a section of 0 rows', { ...show, sections: [{ ...section, rows: 0 }] }, 'sections[0].rows'],
    ['a section of 0 seats per row', { ...show, sections: [{ ...section, seats_per_row: 0 }] }, 'sections[0].seats_per_row'],
    ['a negative price', { ...show, sections: [{ ...section, price_cents: -1 }] }, 'sections[0].price_cents'],
    ['duplicate section names', { ...show, sections: [section, section] }, 'sections'],
    ['an extra section field', { ...show, sections: [{ ...section, colour: 'red' }] }, 'colour'],
    ['an extra field', { ...show, total_seats: 5, venue: 'Hall' }, 'venue'],
  ])('rejects %s naming the field', async (_name, body, field) => {
    const reply = await call(api.app, 'POST', '/admin/shows', { admin: true, body: JSON.parse(JSON.stringify(body)) });
    expectNamedError(reply, 400, field);
  });
});

describe('after all those', () => {
  it('no rejected request reached the queue or the database', async () => {
    const counts = await queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'completed', 'failed');
    expect(Object.values(counts).reduce((sum, n) => sum + n, 0)).toBe(0);
    const bookings = await ctx.pool.query('SELECT count(*)::int AS n FROM bookings');
    expect(bookings.rows[0].n).toBe(0);
  });
});

describe('whatever the body', () => {
  it('POST /booking never answers 5xx, and every 4xx carries the error body', async () => {
    const field = fc.oneof(fc.jsonValue(), fc.constantFrom(ga, reserved, 'a@b.co', 'VIP', 'VIP-A-1', '1', 0, 1, 4, 5));
    const body = fc.oneof(
      fc.jsonValue(),
      fc.record(
        { show_id: field, customer_email: field, seat_count: field, section: field, seats: fc.oneof(field, fc.array(field, { maxLength: 6 })) },
        { requiredKeys: [] },
      ),
    );
    await fc.assert(
      fc.asyncProperty(body, async (value) => {
        const reply = await call(api.app, 'POST', '/booking', { rawBody: JSON.stringify(value) ?? 'null' });
        expect(reply.status === 202 || (reply.status >= 400 && reply.status < 500), `${reply.status} for ${JSON.stringify(value)}`).toBe(true);
        if (reply.status !== 202) {
          expect(reply.body.error).toMatchObject({ code: expect.any(String), message: expect.any(String) });
        }
      }),
      { numRuns: 200 },
    );
  });
});
