import { randomUUID } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { openIntakeTest } from './support/context.js';
import { call, createShow, waitForDecision } from './support/http.js';

/**
 * Every route of the HTTP contract, against the real API, worker, Postgres and Redis. The
 * booking part runs first with no worker, so requests stay QUEUED and their queue position
 * and Retry-After can be observed; then a worker starts and decides them.
 */

const { ctx, api, queue } = await openIntakeTest({ HOLD_SECONDS: '300', EXPIRY_INTERVAL_SECONDS: '3600' });

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;

const expectErrorBody = (body: any, code: string) => {
  expect(body).toMatchObject({ error: { code, message: expect.any(String) } });
};

describe('admin auth', () => {
  const body = { name: 'Auth', start_time: '2030-01-01T20:00:00Z', total_seats: 5 };

  it.each([
    ['no Authorization header', undefined],
    ['a wrong token', 'Bearer not-the-admin-token-at-all'],
    ['a wrong token of the same length', `Bearer ${'x'.repeat('test-admin-token-0123456789'.length)}`],
    ['the right token under another scheme', 'Basic test-admin-token-0123456789'],
    ['an empty bearer', 'Bearer '],
  ])('POST /admin/shows with %s is 401 with WWW-Authenticate', async (_name, authorization) => {
    const reply = await call(api.app, 'POST', '/admin/shows', { body, headers: authorization ? { authorization } : {} });
    expect(reply.status).toBe(401);
    expect(reply.headers['www-authenticate']).toMatch(/^Bearer\b/);
    expectErrorBody(reply.body, 'UNAUTHORIZED');
  });

  it('refuses before looking at the body (no show is created)', async () => {
    const before = await ctx.pool.query('SELECT count(*)::int AS n FROM shows');
    const reply = await call(api.app, 'POST', '/admin/shows', { body: { nonsense: true } });
    expect(reply.status).toBe(401);
    const after = await ctx.pool.query('SELECT count(*)::int AS n FROM shows');
    expect(after.rows[0].n).toBe(before.rows[0].n);
  });
});

describe('shows', () => {
  let gaId: string;
  let reservedId: string;

  it('POST /admin/shows with total_seats makes one GA section labelled "1".."N"', async () => {
    const reply = await call(api.app, 'POST', '/admin/shows', {
      admin: true,
      body: { name: 'General', start_time: '2030-02-01T19:30:00+01:00', total_seats: 12 },
    });
    expect(reply.status).toBe(201);
    expect(reply.body).toMatchObject({
      id: expect.stringMatching(UUID),
      name: 'General',
      start_time: '2030-02-01T18:30:00.000Z',
      total_seats: 12,
      available_seats: 12,
      seating: 'general',
      created_at: expect.stringMatching(ISO),
      sections: [{ name: 'GA', rows: 1, seats_per_row: 12, total_seats: 12, available_seats: 12, held_seats: 0, booked_seats: 0 }],
    });
    expect(reply.headers.location).toBe(`/shows/${reply.body.id}`);
    gaId = reply.body.id;

    const seats = await call(api.app, 'GET', `/shows/${gaId}/seats`);
    expect(seats.status).toBe(200);
    expect(seats.body.map((seat: any) => seat.label)).toEqual(Array.from({ length: 12 }, (_, i) => String(i + 1)));
    expect(seats.body.every((seat: any) => seat.section === 'GA' && seat.status === 'AVAILABLE')).toBe(true);
  });

  it('POST /admin/shows with sections makes labels SECTION-ROW-NUMBER, rows lettered', async () => {
    const reply = await call(api.app, 'POST', '/admin/shows', {
      admin: true,
      body: {
        name: 'Reserved',
        start_time: '2030-03-01T20:00:00Z',
        sections: [
          { name: 'VIP', rows: 2, seats_per_row: 3, price_cents: 9_900 },
          { name: 'Floor', rows: 27, seats_per_row: 2, price_cents: 2_500 },
        ],
      },
    });
    expect(reply.status).toBe(201);
    expect(reply.body).toMatchObject({ total_seats: 60, available_seats: 60, seating: 'reserved' });
    expect(reply.body.sections).toEqual([
      { name: 'VIP', price_cents: 9_900, rows: 2, seats_per_row: 3, total_seats: 6, available_seats: 6, held_seats: 0, booked_seats: 0 },
      { name: 'Floor', price_cents: 2_500, rows: 27, seats_per_row: 2, total_seats: 54, available_seats: 54, held_seats: 0, booked_seats: 0 },
    ]);
    reservedId = reply.body.id;

    const seats = await call(api.app, 'GET', `/shows/${reservedId}/seats`);
    expect(seats.status).toBe(200);
    expect(seats.body).toHaveLength(60);
    const labels = seats.body.map((seat: any) => seat.label);
    expect(labels.slice(0, 6)).toEqual(['VIP-A-1', 'VIP-A-2', 'VIP-A-3', 'VIP-B-1', 'VIP-B-2', 'VIP-B-3']);
    // Row 27 is "AA", as on tickets.
    expect(labels.slice(-2)).toEqual(['Floor-AA-1', 'Floor-AA-2']);
    expect(seats.body[0]).toEqual({ label: 'VIP-A-1', section: 'VIP', row: 1, row_label: 'A', number: 1, price_cents: 9_900, status: 'AVAILABLE' });
    expect(new Set(labels).size).toBe(60);
  });

  it.each([
    ['total_seats above 100,000', { total_seats: 100_001 }, 'total_seats'],
    ['sections adding up to more than 100,000', { sections: [
      { name: 'A', rows: 500, seats_per_row: 100, price_cents: 1 },
      { name: 'B', rows: 500, seats_per_row: 100, price_cents: 1 },
      { name: 'C', rows: 1, seats_per_row: 1, price_cents: 1 },
    ] }, 'sections'],
  ])('POST /admin/shows with %s is 400 and creates nothing', async (_name, layout, field) => {
    const before = await ctx.pool.query('SELECT count(*)::int AS n FROM shows');
    const reply = await call(api.app, 'POST', '/admin/shows', {
      admin: true,
      body: { name: 'Too big', start_time: '2030-01-01T20:00:00Z', ...layout },
    });
    expect(reply.status).toBe(400);
    expectErrorBody(reply.body, 'VALIDATION_ERROR');
    expect(reply.body.error.details.map((d: any) => d.field)).toContain(field);
    const after = await ctx.pool.query('SELECT count(*)::int AS n FROM shows');
    expect(after.rows[0].n).toBe(before.rows[0].n);
  });

  it('GET /shows lists every show with its available seats', async () => {
    const reply = await call(api.app, 'GET', '/shows');
    expect(reply.status).toBe(200);
    expect(reply.body.next).toBeNull();
    const byId = new Map(reply.body.shows.map((show: any) => [show.id, show]));
    expect(byId.get(gaId)).toEqual({
      id: gaId,
      name: 'General',
      start_time: '2030-02-01T18:30:00.000Z',
      total_seats: 12,
      available_seats: 12,
      // Created without a schedule: on sale at once until it starts, with the environment's settings.
      waiting_room_opens_at: expect.stringMatching(ISO),
      sales_open_at: expect.stringMatching(ISO),
      sales_close_at: '2030-02-01T18:30:00.000Z',
      sales_state: 'ON_SALE',
      in_line: 0,
      seed_sha256: expect.stringMatching(/^[0-9a-f]{64}$/),
      hold_seconds: ctx.config.HOLD_SECONDS,
      max_seats_per_customer: ctx.config.MAX_SEATS_PER_CUSTOMER,
      waitlist_offer_seconds: ctx.config.WAITLIST_OFFER_SECONDS,
    });
    expect(byId.get(reservedId)).toMatchObject({ id: reservedId, name: 'Reserved', total_seats: 60, available_seats: 60 });
  });

  it('GET /shows/:id gives one show with availability per section', async () => {
    const reply = await call(api.app, 'GET', `/shows/${reservedId}`);
    expect(reply.status).toBe(200);
    expect(reply.body).toMatchObject({ id: reservedId, name: 'Reserved', total_seats: 60, available_seats: 60, seating: 'reserved' });
    expect(reply.body.sections.map((s: any) => [s.name, s.available_seats])).toEqual([['VIP', 6], ['Floor', 54]]);
  });

  it('GET /shows/:id and /shows/:id/seats of an unknown show are 404', async () => {
    for (const url of [`/shows/${randomUUID()}`, `/shows/${randomUUID()}/seats`]) {
      const reply = await call(api.app, 'GET', url);
      expect(reply.status, url).toBe(404);
      expectErrorBody(reply.body, 'NOT_FOUND');
    }
  });
});

describe('bookings', () => {
  let show: { id: string };
  let first: any;
  let second: any;
  let specific: any;

  beforeAll(async () => {
    show = await createShow(api.app, {
      sections: [
        { name: 'VIP', rows: 1, seats_per_row: 4, price_cents: 9_900 },
        { name: 'Floor', rows: 2, seats_per_row: 5, price_cents: 2_500 },
      ],
    });
  });

  it('POST /booking answers 202 QUEUED with id, position, status_url, Location and Retry-After', async () => {
    const reply = await call(api.app, 'POST', '/booking', {
      body: { show_id: show.id, customer_email: 'Grace@Example.COM', seat_count: 2, section: 'Floor' },
    });
    expect(reply.status).toBe(202);
    expect(reply.body).toEqual({
      id: expect.stringMatching(UUID),
      status: 'QUEUED',
      phase: 'IN_LINE',
      position: 1,
      status_url: `/booking/${reply.body.id}/status`,
    });
    expect(reply.headers.location).toBe(`/booking/${reply.body.id}/status`);
    expect(Number(reply.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    first = reply.body;
  });

  it('each later request is further back in line', async () => {
    const reply = await call(api.app, 'POST', '/booking', {
      body: { show_id: show.id, customer_email: 'alan@example.com', seat_count: 1 },
    });
    expect(reply.status).toBe(202);
    expect(reply.body.position).toBe(2);
    second = reply.body;
    const seats = await call(api.app, 'POST', '/booking', {
      body: { show_id: show.id, customer_email: 'edsger@example.com', seats: ['VIP-A-3', 'VIP-A-4'] },
    });
    expect(seats.status).toBe(202);
    expect(seats.body.position).toBe(3);
    specific = seats.body;
    expect(new Set([first.id, second.id, specific.id]).size).toBe(3);
    expect(await queue.getWaitingCount()).toBe(3);
  });

  it('GET /booking/:id/status while QUEUED gives the position, the seats ahead in its show and Retry-After', async () => {
    const reply = await call(api.app, 'GET', `/booking/${second.id}/status`);
    expect(reply.status).toBe(200);
    // The outlook once the show's seats are counted (in the background since its creation): two ahead and one fit.
    const { outlook, ...place } = reply.body;
    expect(place).toEqual({ id: second.id, status: 'QUEUED', phase: 'IN_LINE', position: 2, seats_ahead: 2, updated_at: expect.stringMatching(ISO) });
    expect([undefined, 'GOOD']).toContain(outlook);
    expect(Number(reply.headers['retry-after'])).toBeGreaterThanOrEqual(1);
  });

  it('polling a QUEUED request does not touch Postgres: an API with Postgres unreachable still answers', async () => {
    // Same Redis and queue prefix, but a Postgres address where nothing listens.
    const blind = await ctx.startApi({ DATABASE_URL: 'postgres://postgres@127.0.0.1:1/nowhere' });
    const reply = await call(blind.app, 'GET', `/booking/${specific.id}/status`);
    expect(reply.status).toBe(200);
    expect(reply.body).toMatchObject({ id: specific.id, status: 'QUEUED', position: 3 });
    // ...and that API knows it is not ready.
    const ready = await call(blind.app, 'GET', '/ready');
    expect(ready.status).toBe(503);
    expect(ready.body).toEqual({ status: 'not_ready', checks: { postgres: 'down', redis: 'up', warm_up: 'done' } });
    await blind.close();
  });

  it('GET /booking/:id while QUEUED gives the whole request', async () => {
    const reply = await call(api.app, 'GET', `/booking/${first.id}`);
    expect(reply.status).toBe(200);
    expect(reply.body).toMatchObject({
      id: first.id,
      show_id: show.id,
      customer_email: 'g***@example.com',
      status: 'QUEUED',
      reason: null,
      seat_count: 2,
      section: 'Floor',
      requested_seats: null,
      seats: [],
      position: 1,
      hold_expires_at: null,
      accepted_at: expect.stringMatching(ISO),
      decided_at: null,
      confirmed_at: null,
    });
    const bySeats = await call(api.app, 'GET', `/booking/${specific.id}`);
    expect(bySeats.body).toMatchObject({ status: 'QUEUED', seat_count: 2, section: null, requested_seats: ['VIP-A-3', 'VIP-A-4'] });
  });

  it('an unknown show is 404 at once and nothing is enqueued', async () => {
    const before = await queue.getWaitingCount();
    const reply = await call(api.app, 'POST', '/booking', {
      body: { show_id: randomUUID(), customer_email: 'nobody@example.com', seat_count: 1 },
    });
    expect(reply.status).toBe(404);
    expectErrorBody(reply.body, 'SHOW_NOT_FOUND');
    expect(await queue.getWaitingCount()).toBe(before);
  });

  it('unknown booking ids are 404 on every booking route', async () => {
    const id = randomUUID();
    for (const [method, url, body] of [
      ['GET', `/booking/${id}/status`, undefined],
      ['GET', `/booking/${id}`, undefined],
      ['POST', `/booking/${id}/confirm`, { payment: 'success' }],
      ['POST', `/booking/${id}/cancel`, undefined],
    ] as const) {
      const reply = await call(api.app, method, url, body ? { body } : {});
      expect(reply.status, `${method} ${url}`).toBe(404);
      expectErrorBody(reply.body, 'NOT_FOUND');
    }
  });

  it('a worker then decides them: status and whole booking show the hold', async () => {
    await ctx.startWorker();
    const decided = await waitForDecision(api.app, first.id);
    expect(decided).toEqual({
      id: first.id,
      status: 'HELD',
      seats: ['Floor-A-1', 'Floor-A-2'],
      hold_expires_at: expect.stringMatching(ISO),
      updated_at: expect.stringMatching(ISO),
    });
    const holdMs = Date.parse(decided.hold_expires_at) - Date.now();
    expect(holdMs).toBeGreaterThan(250_000);
    expect(holdMs).toBeLessThanOrEqual(300_000);

    const whole = await call(api.app, 'GET', `/booking/${first.id}`);
    expect(whole.status).toBe(200);
    expect(whole.body).toEqual({
      id: first.id,
      show_id: show.id,
      customer_email: 'g***@example.com',
      status: 'HELD',
      reason: null,
      seat_count: 2,
      section: 'Floor',
      requested_seats: null,
      seats: ['Floor-A-1', 'Floor-A-2'],
      total_cents: 5_000,
      hold_expires_at: decided.hold_expires_at,
      accepted_at: expect.stringMatching(ISO),
      decided_at: expect.stringMatching(ISO),
      confirmed_at: null,
      updated_at: expect.stringMatching(ISO),
      from_waitlist: false,
    });

    // Best available without a section starts at the best section.
    expect(await waitForDecision(api.app, second.id)).toMatchObject({ status: 'HELD', seats: ['VIP-A-1'] });
    expect(await waitForDecision(api.app, specific.id)).toMatchObject({ status: 'HELD', seats: ['VIP-A-3', 'VIP-A-4'] });
  });

  it('a taken specific seat fails SEATS_UNAVAILABLE; asking for more than is left fails SOLD_OUT', async () => {
    const taken = await call(api.app, 'POST', '/booking', {
      body: { show_id: show.id, customer_email: 'barbara@example.com', seats: ['VIP-A-2', 'VIP-A-3'] },
    });
    expect(taken.status).toBe(202);
    expect(await waitForDecision(api.app, taken.body.id)).toMatchObject({ status: 'FAILED', reason: 'SEATS_UNAVAILABLE', seats: [] });
    const whole = await call(api.app, 'GET', `/booking/${taken.body.id}`);
    expect(whole.body).toMatchObject({ status: 'FAILED', reason: 'SEATS_UNAVAILABLE', seats: [] });

    const tooMany = await call(api.app, 'POST', '/booking', {
      body: { show_id: show.id, customer_email: 'john@example.com', seat_count: 2, section: 'VIP' },
    });
    expect(await waitForDecision(api.app, tooMany.body.id)).toMatchObject({ status: 'FAILED', reason: 'SOLD_OUT' });
  });

  it('availability reflects the holds in GET /shows/:id, /shows/:id/seats and /shows', async () => {
    const detail = await call(api.app, 'GET', `/shows/${show.id}`);
    expect(detail.body.available_seats).toBe(9);
    expect(detail.body.sections).toEqual([
      expect.objectContaining({ name: 'VIP', total_seats: 4, available_seats: 1, held_seats: 3, booked_seats: 0 }),
      expect.objectContaining({ name: 'Floor', total_seats: 10, available_seats: 8, held_seats: 2, booked_seats: 0 }),
    ]);
    const seats = await call(api.app, 'GET', `/shows/${show.id}/seats`);
    const held = seats.body.filter((seat: any) => seat.status === 'HELD').map((seat: any) => seat.label);
    expect(held).toEqual(['VIP-A-1', 'VIP-A-3', 'VIP-A-4', 'Floor-A-1', 'Floor-A-2']);
    const list = await call(api.app, 'GET', '/shows');
    expect(list.body.shows.find((s: any) => s.id === show.id)).toMatchObject({ total_seats: 14, available_seats: 9 });
  });

  it('confirm and cancel answer with the whole booking', async () => {
    const confirmed = await call(api.app, 'POST', `/booking/${first.id}/confirm`, { body: { payment: 'success' } });
    expect(confirmed.status).toBe(200);
    expect(confirmed.body).toMatchObject({ id: first.id, status: 'CONFIRMED', seats: ['Floor-A-1', 'Floor-A-2'], confirmed_at: expect.stringMatching(ISO) });
    const cancelled = await call(api.app, 'POST', `/booking/${second.id}/cancel`);
    expect(cancelled.status).toBe(200);
    expect(cancelled.body).toMatchObject({ id: second.id, status: 'CANCELLED', seats: ['VIP-A-1'] });
    const status = await call(api.app, 'GET', `/booking/${first.id}/status`);
    expect(status.body).toMatchObject({ status: 'CONFIRMED', seats: ['Floor-A-1', 'Floor-A-2'] });
  });
});

describe('health', () => {
  it('GET /health is 200 ok', async () => {
    const reply = await call(api.app, 'GET', '/health');
    expect(reply.status).toBe(200);
    expect(reply.body).toEqual({ status: 'ok' });
  });

  it('GET /ready is 200 when Postgres and Redis are reachable', async () => {
    const reply = await call(api.app, 'GET', '/ready');
    expect(reply.status).toBe(200);
    expect(reply.body).toEqual({ status: 'ready', checks: { postgres: 'up', redis: 'up', warm_up: 'done' } });
  });

  it('an unknown route is a JSON 404', async () => {
    const reply = await call(api.app, 'GET', '/nope');
    expect(reply.status).toBe(404);
    expectErrorBody(reply.body, 'NOT_FOUND');
  });
});
