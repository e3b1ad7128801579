import { createHash, randomUUID } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { LayoutCache } from '../shared/booking/shows.js';
import { openTestApi } from './support/context.js';
import { call, waitForDecision } from './support/http.js';
import { waitFor } from './support/wait.js';

/**
 * A show's sale schedule (issue 13): the times POST /admin/shows takes and checks, sales_state
 * in each state, PATCH rules, the 409s of POST /booking outside the schedule, and the per-show
 * overrides the worker decides with.
 */

const { ctx, api } = await openTestApi();

const HOUR = 3_600_000;
const at = (offsetMs: number) => new Date(Date.now() + offsetMs).toISOString();
const START = '2031-06-01T20:00:00.000Z';

const postShow = (body: Record<string, unknown>) =>
  call(api.app, 'POST', '/admin/shows', { body: { name: 'Scheduled', start_time: START, total_seats: 5, ...body }, admin: true });
const patchShow = (id: string, body: Record<string, unknown>) => call(api.app, 'PATCH', `/admin/shows/${id}`, { body, admin: true });
const book = (showId: string, email = 'buyer@example.com', seatCount = 1) =>
  call(api.app, 'POST', '/booking', { body: { show_id: showId, customer_email: email, seat_count: seatCount } });
const stateOf = async (id: string) => (await call(api.app, 'GET', `/shows/${id}`)).body.sales_state as string;

function expectFieldError(reply: { status: number; body: any }, field: string, problem?: RegExp) {
  expect(reply.status, JSON.stringify(reply.body)).toBe(400);
  expect(reply.body.error.code).toBe('VALIDATION_ERROR');
  const detail = reply.body.error.details.find((d: { field: string }) => d.field === field);
  expect(detail, JSON.stringify(reply.body)).toBeDefined();
  if (problem) expect(detail.problem).toMatch(problem);
}

describe('POST /admin/shows with a schedule', () => {
  it('stores the times and overrides, and every view carries them with the commitment', async () => {
    const times = { waiting_room_opens_at: at(HOUR), sales_open_at: at(2 * HOUR), sales_close_at: at(3 * HOUR) };
    const created = await postShow({ ...times, hold_seconds: 45, max_seats_per_customer: 2, waitlist_offer_seconds: 90 });
    expect(created.status).toBe(201);
    const expected = {
      ...times,
      sales_state: 'SCHEDULED',
      in_line: 0,
      seed_sha256: expect.stringMatching(/^[0-9a-f]{64}$/),
      hold_seconds: 45,
      max_seats_per_customer: 2,
      waitlist_offer_seconds: 90,
    };
    expect(created.body).toMatchObject(expected);
    expect((await call(api.app, 'GET', `/shows/${created.body.id}`)).body).toMatchObject(expected);
    expect((await call(api.app, 'GET', `/admin/shows/${created.body.id}`, { admin: true })).body).toMatchObject(expected);
    const listed = (await call(api.app, 'GET', '/shows?limit=200')).body.shows.find((show: { id: string }) => show.id === created.body.id);
    expect(listed).toMatchObject(expected);
  });

  it('commits to a seed of 32 random bytes per show: seed_sha256 is its SHA-256, and shows differ', async () => {
    const a = (await postShow({})).body;
    const b = (await postShow({})).body;
    expect(a.seed_sha256).not.toBe(b.seed_sha256);
    const stored = await ctx.pool.query<{ draw_seed: Buffer }>('SELECT draw_seed FROM shows WHERE id = $1', [a.id]);
    expect(stored.rows[0]!.draw_seed).toHaveLength(32);
    expect(createHash('sha256').update(stored.rows[0]!.draw_seed).digest('hex')).toBe(a.seed_sha256);
  });

  it('defaults: on sale from creation until the start, with the environment settings', async () => {
    const before = Date.now();
    const show = (await postShow({})).body;
    expect(Date.parse(show.sales_open_at)).toBeGreaterThanOrEqual(before - 1_000);
    expect(show.waiting_room_opens_at).toBe(show.sales_open_at);
    expect(show.sales_close_at).toBe(START);
    expect(show).toMatchObject({
      sales_state: 'ON_SALE',
      hold_seconds: ctx.config.HOLD_SECONDS,
      max_seats_per_customer: ctx.config.MAX_SEATS_PER_CUSTOMER,
      waitlist_offer_seconds: ctx.config.WAITLIST_OFFER_SECONDS,
    });
  });

  it('a show created after its start is CLOSED, its schedule in order', async () => {
    const show = (await postShow({ start_time: '2001-01-01T00:00:00Z' })).body;
    expect(show.sales_state).toBe('CLOSED');
    expect(show.sales_close_at).toBe('2001-01-01T00:00:00.000Z');
    expect(Date.parse(show.sales_open_at)).toBeLessThan(Date.parse(show.sales_close_at));
  });

  it.each([
    ['sales_open_at', { sales_open_at: 'tomorrow' }, /ISO 8601/],
    ['waiting_room_opens_at', { waiting_room_opens_at: '2031-13-01T00:00:00Z' }, /ISO 8601/],
    ['sales_close_at', { sales_close_at: 1_700_000_000 }, undefined],
    ['sales_close_at', { sales_close_at: '0000-01-01T00:00:00Z' }, /between/],
    ['waiting_room_opens_at', { waiting_room_opens_at: at(2 * HOUR), sales_open_at: at(HOUR) }, /not be after sales_open_at/],
    ['waiting_room_opens_at', { waiting_room_opens_at: at(2 * HOUR) }, /not be after sales_open_at/],
    ['sales_open_at', { sales_open_at: at(2 * HOUR), sales_close_at: at(HOUR) }, /before sales_close_at/],
    ['sales_open_at', { sales_open_at: '2031-06-01T20:00:00Z' }, /before sales_close_at .*start_time/],
    ['hold_seconds', { hold_seconds: 0 }, undefined],
    ['hold_seconds', { hold_seconds: 1.5 }, undefined],
    ['hold_seconds', { hold_seconds: 86_401 }, undefined],
    ['max_seats_per_customer', { max_seats_per_customer: 0 }, undefined],
    ['max_seats_per_customer', { max_seats_per_customer: '3' }, undefined],
    ['waitlist_offer_seconds', { waitlist_offer_seconds: 0 }, undefined],
    ['waitlist_offer_seconds', { waitlist_offer_seconds: 2.5 }, undefined],
    ['waitlist_offer_seconds', { waitlist_offer_seconds: 86_401 }, undefined],
  ])('refuses a bad %s: %j', async (field, body, problem) => {
    expectFieldError(await postShow(body), field, problem);
  });

  it('refuses an opening equal to the close', async () => {
    const time = at(HOUR);
    expectFieldError(await postShow({ sales_open_at: time, sales_close_at: time }), 'sales_open_at', /before sales_close_at/);
  });
});

describe('sales_state', () => {
  it('SCHEDULED → WAITING_ROOM → ON_SALE → PAUSED → CLOSED as the clock and the row say', async () => {
    const show = (await postShow({ waiting_room_opens_at: at(HOUR), sales_open_at: at(2 * HOUR), sales_close_at: at(3 * HOUR) })).body;
    expect(await stateOf(show.id)).toBe('SCHEDULED');
    const move = (column: string, offsetMs: number) => ctx.pool.query(`UPDATE shows SET ${column} = $1 WHERE id = $2`, [new Date(Date.now() + offsetMs), show.id]);
    await move('waiting_room_opens_at', -HOUR);
    expect(await stateOf(show.id)).toBe('WAITING_ROOM');
    await move('sales_open_at', -HOUR);
    expect(await stateOf(show.id)).toBe('ON_SALE');
    await ctx.pool.query('UPDATE shows SET paused_at = now() WHERE id = $1', [show.id]);
    expect(await stateOf(show.id)).toBe('PAUSED');
    await move('sales_close_at', -HOUR / 2);
    expect(await stateOf(show.id)).toBe('CLOSED');
  });
});

describe('POST /booking outside the schedule', () => {
  it('before the waiting room opens: 409 SALE_NOT_OPEN naming the time', async () => {
    const opens = at(HOUR);
    const show = (await postShow({ waiting_room_opens_at: opens, sales_open_at: at(2 * HOUR) })).body;
    const reply = await book(show.id);
    expect(reply.status).toBe(409);
    expect(reply.body.error).toEqual({
      code: 'SALE_NOT_OPEN',
      message: expect.stringContaining(opens),
      details: [{ field: 'show_id', problem: `the waiting room opens at ${opens} (waiting_room_opens_at)` }],
    });
  });

  it('in the waiting room: accepted (202)', async () => {
    const show = (await postShow({ waiting_room_opens_at: at(-HOUR), sales_open_at: at(HOUR) })).body;
    expect((await book(show.id)).status).toBe(202);
  });

  it('after sales_close_at (before the show starts): 409 SALE_CLOSED naming the close', async () => {
    const show = (await postShow({})).body;
    const closed = new Date(Date.now() - 1_000);
    // Straight in the row (a PATCH cannot set a past close); this API has not cached the show yet.
    await ctx.pool.query(
      `UPDATE shows SET waiting_room_opens_at = $1::timestamptz - interval '1 hour', sales_open_at = $1::timestamptz - interval '1 hour', sales_close_at = $1 WHERE id = $2`,
      [closed, show.id],
    );
    const reply = await book(show.id);
    expect(reply.status).toBe(409);
    expect(reply.body.error).toEqual({
      code: 'SALE_CLOSED',
      message: expect.stringContaining(closed.toISOString()),
      details: [{ field: 'show_id', problem: `the sale closed at ${closed.toISOString()} (sales_close_at)` }],
    });
  });
});

describe('in_line', () => {
  it('counts the requests of each show waiting to be decided (no worker runs yet)', async () => {
    const a = (await postShow({})).body;
    const b = (await postShow({})).body;
    for (const email of ['1@example.com', '2@example.com', '3@example.com']) expect((await book(a.id, email)).status).toBe(202);
    expect((await book(b.id)).status).toBe(202);
    const inLine = (id: string) => call(api.app, 'GET', `/shows/${id}`).then((reply) => reply.body.in_line as number);
    await waitFor(async () => ((await inLine(a.id)) === 3 ? true : undefined), 'show A to count 3 in line');
    expect(await inLine(b.id)).toBe(1);
  });
});

describe('PATCH /admin/shows/:id', () => {
  it('changes the name, future times and overrides, and answers the show', async () => {
    const show = (await postShow({ waiting_room_opens_at: at(HOUR), sales_open_at: at(2 * HOUR), sales_close_at: at(3 * HOUR) })).body;
    const times = { waiting_room_opens_at: at(4 * HOUR), sales_open_at: at(5 * HOUR), sales_close_at: at(6 * HOUR) };
    const reply = await patchShow(show.id, { name: 'Renamed', ...times, hold_seconds: 30, max_seats_per_customer: 4, waitlist_offer_seconds: 120 });
    expect(reply.status, JSON.stringify(reply.body)).toBe(200);
    expect(reply.body).toMatchObject({
      id: show.id,
      name: 'Renamed',
      ...times,
      hold_seconds: 30,
      max_seats_per_customer: 4,
      waitlist_offer_seconds: 120,
      sales_state: 'SCHEDULED',
    });
    // null puts the environment's value back.
    const reset = await patchShow(show.id, { hold_seconds: null, waitlist_offer_seconds: null });
    expect(reset.body).toMatchObject({ hold_seconds: ctx.config.HOLD_SECONDS, max_seats_per_customer: 4, waitlist_offer_seconds: ctx.config.WAITLIST_OFFER_SECONDS });
    const stored = await ctx.pool.query<{ waitlist_offer_seconds: number | null }>('SELECT waitlist_offer_seconds FROM shows WHERE id = $1', [show.id]);
    expect(stored.rows[0]!.waitlist_offer_seconds).toBeNull();
    expectFieldError(await patchShow(show.id, { waitlist_offer_seconds: 0 }), 'waitlist_offer_seconds');
  });

  it('refuses to move a time that has passed: 409 SCHEDULE_TIME_PASSED naming the field and when', async () => {
    const show = (await postShow({ waiting_room_opens_at: at(-HOUR), sales_open_at: at(HOUR) })).body;
    const reply = await patchShow(show.id, { waiting_room_opens_at: at(HOUR / 2) });
    expect(reply.status).toBe(409);
    expect(reply.body.error).toMatchObject({
      code: 'SCHEDULE_TIME_PASSED',
      details: [{ field: 'waiting_room_opens_at', problem: `passed at ${show.waiting_room_opens_at}` }],
    });
    // The opening itself is still ahead: it can move.
    expect((await patchShow(show.id, { sales_open_at: at(2 * HOUR) })).status).toBe(200);
    // An on-sale show's opening has happened.
    const onSale = (await postShow({})).body;
    expect((await patchShow(onSale.id, { sales_open_at: at(HOUR) })).body.error.code).toBe('SCHEDULE_TIME_PASSED');
    // Name and overrides may change whenever.
    expect((await patchShow(onSale.id, { name: 'Still on sale', max_seats_per_customer: 1 })).status).toBe(200);
  });

  it('refuses a new time in the past and a schedule out of order, naming the field', async () => {
    const show = (await postShow({ waiting_room_opens_at: at(HOUR), sales_open_at: at(2 * HOUR), sales_close_at: at(3 * HOUR) })).body;
    expectFieldError(await patchShow(show.id, { sales_close_at: at(-HOUR) }), 'sales_close_at', /in the future/);
    expectFieldError(await patchShow(show.id, { sales_open_at: at(4 * HOUR) }), 'sales_open_at', /before sales_close_at/);
    expectFieldError(await patchShow(show.id, { sales_close_at: at(HOUR + 1_000) }), 'sales_close_at', /after sales_open_at/);
    expectFieldError(await patchShow(show.id, { waiting_room_opens_at: at(2 * HOUR + 1_000) }), 'waiting_room_opens_at', /not be after/);
    expectFieldError(await patchShow(show.id, { sales_open_at: at(HOUR / 2) }), 'sales_open_at', /not be before waiting_room_opens_at/);
    expect((await call(api.app, 'GET', `/shows/${show.id}`)).body).toMatchObject({ sales_open_at: show.sales_open_at, sales_close_at: show.sales_close_at });
  });

  it.each([
    ['body', {}],
    ['name', { name: '' }],
    ['name', { name: 'a\u0000b' }],
    ['sales_open_at', { sales_open_at: 'soon' }],
    ['hold_seconds', { hold_seconds: -1 }],
    ['max_seats_per_customer', { max_seats_per_customer: 1_001 }],
    ['body', { start_time: START }, /start_time/],
  ])('refuses bad input naming %s: %j', async (field, body, problem?: RegExp) => {
    const show = (await postShow({})).body;
    expectFieldError(await patchShow(show.id, body), field, problem);
  });

  it('404 for an unknown show, 400 for a malformed id, 401 without the token', async () => {
    expect((await patchShow(randomUUID(), { name: 'x' })).status).toBe(404);
    expectFieldError(await patchShow('not-a-uuid', { name: 'x' }), 'id');
    expect((await call(api.app, 'PATCH', `/admin/shows/${randomUUID()}`, { body: { name: 'x' } })).status).toBe(401);
  });

  it('another process sees new times once its cached plan is older than its bound', async () => {
    const show = (await postShow({ waiting_room_opens_at: at(HOUR), sales_open_at: at(2 * HOUR) })).body;
    const elsewhere = new LayoutCache(ctx.db, 10, 0);
    expect((await elsewhere.get(show.id))!.salesOpenAt.toISOString()).toBe(show.sales_open_at);
    const moved = at(90 * 60_000);
    expect((await patchShow(show.id, { sales_open_at: moved })).status).toBe(200);
    expect((await elsewhere.get(show.id))!.salesOpenAt.toISOString()).toBe(moved);
  });

  it('this process takes a PATCHed waiting room at once: booking turns from 409 to 202', async () => {
    const show = (await postShow({ waiting_room_opens_at: at(HOUR), sales_open_at: at(2 * HOUR) })).body;
    expect((await book(show.id)).body.error.code).toBe('SALE_NOT_OPEN');
    // Its waiting room is still ahead, so it can move, here to a moment from now.
    const soon = new Date(Date.now() + 1_000);
    expect((await patchShow(show.id, { waiting_room_opens_at: soon.toISOString() })).status).toBe(200);
    const accepted = await waitFor(async () => {
      const reply = await book(show.id);
      if (reply.status !== 202 && reply.body.error?.code !== 'SALE_NOT_OPEN') throw new Error(`unexpected ${reply.status}`);
      return reply.status === 202 ? reply : undefined;
    }, 'the waiting room to open');
    expect(Date.now()).toBeGreaterThanOrEqual(soon.getTime());
    expect(accepted.body.status).toBe('QUEUED');
  });
});

describe('per-show overrides, as the worker decides', () => {
  beforeAll(async () => {
    await ctx.startWorker();
  });

  it('holds last the show\'s hold_seconds', async () => {
    const show = (await postShow({ hold_seconds: 7 })).body;
    const booking = await book(show.id);
    const decided = await waitForDecision(api.app, booking.body.id);
    expect(decided.status).toBe('HELD');
    const row = await ctx.pool.query<{ seconds: number }>(
      'SELECT extract(epoch FROM hold_expires_at - decided_at)::float AS seconds FROM bookings WHERE id = $1',
      [booking.body.id],
    );
    expect(row.rows[0]!.seconds).toBeCloseTo(7, 3);
  });

  it("caps a customer at the show's max_seats_per_customer", async () => {
    const show = (await postShow({ total_seats: 10, max_seats_per_customer: 2 })).body;
    expect((await waitForDecision(api.app, (await book(show.id, 'cap@example.com', 2)).body.id)).status).toBe('HELD');
    const over = await waitForDecision(api.app, (await book(show.id, 'cap@example.com', 1)).body.id);
    expect(over).toMatchObject({ status: 'FAILED', reason: 'LIMIT_EXCEEDED' });
    // Another show under the environment's default (10) lets the same customer take 3.
    const other = (await postShow({ total_seats: 10 })).body;
    expect((await waitForDecision(api.app, (await book(other.id, 'cap@example.com', 3)).body.id)).status).toBe('HELD');
  });

  it('an opening brought forward by PATCH draws the waiting room at the new time', async () => {
    const show = (await postShow({ sales_open_at: at(HOUR) })).body;
    const waiting = await book(show.id, 'early-bird@example.com');
    expect(waiting.body.phase).toBe('WAITING_ROOM');
    // The room's first request scheduled the keeper for the old opening, an hour away.
    expect((await patchShow(show.id, { sales_open_at: at(1_000) })).status).toBe(200);
    expect((await waitForDecision(api.app, waiting.body.id)).status).toBe('HELD');
    const draw = await call(api.app, 'GET', `/shows/${show.id}/draw`);
    expect(draw.body.entries).toBe(1);
  });

  it('SOLD_OUT once every seat is BOOKED (a HELD one still counts as unsold)', async () => {
    const show = (await postShow({ total_seats: 1 })).body;
    const booking = await book(show.id);
    expect((await waitForDecision(api.app, booking.body.id)).status).toBe('HELD');
    expect(await stateOf(show.id)).toBe('ON_SALE');
    expect((await call(api.app, 'POST', `/booking/${booking.body.id}/confirm`, { body: { payment: 'success' } })).status).toBe(200);
    expect(await stateOf(show.id)).toBe('SOLD_OUT');
    const listed = (await call(api.app, 'GET', '/shows?limit=200')).body.shows.find((s: { id: string }) => s.id === show.id);
    expect(listed.sales_state).toBe('SOLD_OUT');
  });
});
