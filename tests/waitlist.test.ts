import { describe, expect, it } from 'vitest';
import { webhooks } from '../shared/db/schema/index.js';
import { BOOKING_EVENT_TYPES } from '../shared/webhooks/events.js';
import { openTestApi } from './support/context.js';
import { call, createShow, waitForDecision } from './support/http.js';
import { waitFor } from './support/wait.js';

/**
 * The waiting list through the API, with a real worker: joining it, the order and the fit rule
 * (first fit: an entry the free seats cannot serve keeps its place, the next ones that fit get
 * the seats), offers after a cancel, a declined payment, a lapsed hold, a refund, an offer that
 * lapses passing to the next entry, the per-customer cap, cancel and close, and bad input on
 * every new route. Holds last 5 minutes; the sweep runs every second, so a hold lapses only
 * when a test backdates it.
 */

const { ctx, api } = await openTestApi({ HOLD_SECONDS: '300', EXPIRY_INTERVAL_SECONDS: '1', MAX_SEATS_PER_CUSTOMER: '4' });
await ctx.startWorker();

let emails = 0;
const email = () => `buyer${++emails}@example.com`;

async function book(showId: string, body: Record<string, unknown>) {
  const accepted = await call(api.app, 'POST', '/booking', { body: { show_id: showId, customer_email: email(), ...body } });
  expect(accepted.status, JSON.stringify(accepted.body)).toBe(202);
  return { id: accepted.body.id as string, decided: await waitForDecision(api.app, accepted.body.id) };
}

const status = async (id: string) => (await call(api.app, 'GET', `/booking/${id}/status`)).body;
const view = async (id: string) => (await call(api.app, 'GET', `/booking/${id}`)).body;
const cancel = (id: string) => call(api.app, 'POST', `/booking/${id}/cancel`);
const confirm = (id: string, payment: 'success' | 'fail' = 'success') => call(api.app, 'POST', `/booking/${id}/confirm`, { body: { payment } });
const refund = (id: string) => call(api.app, 'POST', `/admin/bookings/${id}/refund`, { admin: true });
const waitlist = (showId: string, query = '') => call(api.app, 'GET', `/admin/shows/${showId}/waitlist${query}`, { admin: true });

async function waitForStatus(id: string, wanted: string): Promise<any> {
  let last: unknown;
  return waitFor(
    async () => {
      // The full read asks Postgres first: a poll may answer a fresh hold from the worker's record.
      last = await view(id);
      return (last as { status: string }).status === wanted ? last : undefined;
    },
    `booking ${id} to be ${wanted}`,
    15_000,
    () => `last: ${JSON.stringify(last)}`,
  );
}

/** A show of `seats` general-admission seats, every one held by its own booking. */
async function soldOutShow(seats: number) {
  const show = await createShow(api.app, { total_seats: seats, price_cents: 1_000 });
  const holds: string[] = [];
  for (let i = 0; i < seats; i++) holds.push((await book(show.id, { seat_count: 1 })).id);
  return { showId: show.id, holds };
}

/** Makes a hold lapse now, as time passing would (the sweep then finds it). */
async function lapse(bookingId: string) {
  await ctx.pool.query(`UPDATE seats SET hold_expires_at = now() - interval '1 second' WHERE booking_id = $1 AND status = 'HELD'`, [bookingId]);
  await ctx.pool.query(`UPDATE bookings SET hold_expires_at = now() - interval '1 second' WHERE id = $1`, [bookingId]);
}

describe('joining the list', () => {
  it('a sold-out request with waitlist joins it (WAITLISTED, no seats, its position); without it, SOLD_OUT', async () => {
    const { showId } = await soldOutShow(2);
    const first = await book(showId, { seat_count: 1, waitlist: true });
    const second = await book(showId, { seat_count: 2, waitlist: true });
    const plain = await book(showId, { seat_count: 1 });
    expect(first.decided).toMatchObject({ status: 'WAITLISTED', waitlist_position: 1, seats: [] });
    expect(second.decided).toMatchObject({ status: 'WAITLISTED', waitlist_position: 2 });
    expect(plain.decided).toMatchObject({ status: 'FAILED', reason: 'SOLD_OUT' });
    expect(await view(second.id)).toMatchObject({ status: 'WAITLISTED', from_waitlist: true, waitlist_position: 2, seats: [], total_cents: 0 });

    const listed = await waitlist(showId);
    expect(listed.status).toBe(200);
    expect(listed.body.entries).toEqual([
      { booking_id: first.id, position: 1, customer_email: expect.stringMatching(/@example\.com$/), seat_count: 1, section: null, waiting_since: expect.any(String) },
      { booking_id: second.id, position: 2, customer_email: expect.any(String), seat_count: 2, section: null, waiting_since: expect.any(String) },
    ]);
    // Paginated: one a page, the second page continues the positions.
    const page1 = await waitlist(showId, '?limit=1');
    expect(page1.body.entries.map((e: { position: number }) => e.position)).toEqual([1]);
    const page2 = await call(api.app, 'GET', page1.body.next, { admin: true });
    expect(page2.body).toMatchObject({ entries: [{ booking_id: second.id, position: 2 }], next: null });
  });

  it('a request that fits free seats is held as usual, waitlist or not', async () => {
    const show = await createShow(api.app, { total_seats: 3 });
    const { decided } = await book(show.id, { seat_count: 2, waitlist: true });
    expect(decided).toMatchObject({ status: 'HELD', seats: ['1', '2'] });
    expect(await view((await book(show.id, { seat_count: 1, waitlist: true })).id)).toMatchObject({ status: 'HELD', from_waitlist: false });
  });
});

describe('offers', () => {
  it('a cancel offers the seats in order, first fit: an entry the seats cannot serve keeps its place (1) while smaller ones behind it get them', async () => {
    const { showId, holds } = await soldOutShow(3);
    const one = await book(showId, { seat_count: 1, waitlist: true });
    const three = await book(showId, { seat_count: 3, waitlist: true });
    const another = await book(showId, { seat_count: 1, waitlist: true });
    const last = await book(showId, { seat_count: 1, waitlist: true });

    expect((await cancel(holds[0]!)).status).toBe(200);
    const offered = await waitForStatus(one.id, 'HELD');
    expect(offered).toMatchObject({ seats: ['1'] });
    expect(await view(one.id)).toMatchObject({ status: 'HELD', from_waitlist: true, total_cents: 1_000 });
    // The offer holds for WAITLIST_OFFER_SECONDS (900 by default), not HOLD_SECONDS (300).
    const heldFor = Date.parse(offered.hold_expires_at) - Date.parse(offered.updated_at);
    expect(heldFor).toBeGreaterThan(800_000);

    // One free seat would not serve the entry of three: the next entry of one takes it, and
    // the next seat goes to the one after that.
    expect((await cancel(holds[1]!)).status).toBe(200);
    expect(await view(another.id)).toMatchObject({ status: 'HELD', seats: ['2'] });
    expect(await view(last.id)).toMatchObject({ status: 'WAITLISTED', waitlist_position: 2 });
    expect((await cancel(holds[2]!)).status).toBe(200);
    expect(await view(last.id)).toMatchObject({ status: 'HELD', seats: ['3'] });
    expect(await status(three.id)).toMatchObject({ status: 'WAITLISTED', waitlist_position: 1 });

    // A new request (waitlist or not) never gets a seat ahead of a fitting entry; here none is free.
    expect((await book(showId, { seat_count: 1 })).decided).toMatchObject({ status: 'FAILED', reason: 'SOLD_OUT' });
  });

  it('a declined payment and a cancel together serve a group entry, adjacent seats', async () => {
    const { showId, holds } = await soldOutShow(4);
    const pair = await book(showId, { seat_count: 2, waitlist: true });
    expect((await confirm(holds[1]!, 'fail')).body).toMatchObject({ status: 'FAILED', reason: 'PAYMENT_FAILED' });
    expect(await status(pair.id)).toMatchObject({ status: 'WAITLISTED', waitlist_position: 1 });
    expect((await cancel(holds[2]!)).status).toBe(200);
    expect(await waitForStatus(pair.id, 'HELD')).toMatchObject({ seats: ['2', '3'] });
  });

  it('a lapsed hold is offered to the list; an offer that lapses passes to the next entry', async () => {
    const { showId, holds } = await soldOutShow(1);
    await ctx.pool.query('UPDATE shows SET waitlist_offer_seconds = 1 WHERE id = $1', [showId]);
    const first = await book(showId, { seat_count: 1, waitlist: true });
    const second = await book(showId, { seat_count: 1, waitlist: true });
    await lapse(holds[0]!);
    await waitForStatus(holds[0]!, 'EXPIRED');
    // The offer lasts the show's own 1 s, then the sweep passes the seat on.
    await waitForStatus(second.id, 'HELD');
    expect(await view(first.id)).toMatchObject({ status: 'EXPIRED', from_waitlist: true, seats: ['1'] });
    expect(await view(second.id)).toMatchObject({ status: 'HELD', from_waitlist: true, seats: ['1'] });
  });

  it('a refund makes a confirmed booking REFUNDED and offers its seats; refunding again answers the same', async () => {
    const { showId, holds } = await soldOutShow(1);
    expect((await confirm(holds[0]!)).status).toBe(200);
    const waiting = await book(showId, { seat_count: 1, waitlist: true });
    const refunded = await refund(holds[0]!);
    expect(refunded.status).toBe(200);
    expect(refunded.body).toMatchObject({ status: 'REFUNDED', seats: ['1'], customer_email: expect.not.stringContaining('***') });
    expect(await waitForStatus(waiting.id, 'HELD')).toMatchObject({ seats: ['1'] });
    expect((await refund(holds[0]!)).status).toBe(200);
    // Only a confirmed booking is refunded.
    const notConfirmed = await refund(waiting.id);
    expect(notConfirmed.status).toBe(409);
    expect(notConfirmed.body.error.code).toBe('BOOKING_NOT_CONFIRMED');
  });

  it('an entry that named a section waits for that section; one for any section takes what is free', async () => {
    const show = await createShow(api.app, {
      sections: [
        { name: 'VIP', rows: 1, seats_per_row: 1, price_cents: 5_000 },
        { name: 'Stalls', rows: 1, seats_per_row: 1, price_cents: 1_000 },
      ],
    });
    const vipHold = await book(show.id, { seat_count: 1, section: 'VIP' });
    const stallsHold = await book(show.id, { seat_count: 1, section: 'Stalls' });
    const vip = await book(show.id, { seat_count: 1, section: 'VIP', waitlist: true });
    const any = await book(show.id, { seat_count: 1, waitlist: true });
    expect(vip.decided).toMatchObject({ status: 'WAITLISTED', waitlist_position: 1 });
    expect((await cancel(stallsHold.id)).status).toBe(200);
    expect(await waitForStatus(any.id, 'HELD')).toMatchObject({ seats: ['Stalls-A-1'] });
    expect(await status(vip.id)).toMatchObject({ status: 'WAITLISTED', waitlist_position: 1 });
    expect((await cancel(vipHold.id)).status).toBe(200);
    expect(await waitForStatus(vip.id, 'HELD')).toMatchObject({ seats: ['VIP-A-1'] });
  });
});

describe('the cap, cancel and close', () => {
  it('a place on the list counts against the per-customer cap (4), as the offer will', async () => {
    const { showId } = await soldOutShow(1);
    const buyer = 'capped@example.com';
    const join = (seat_count: number) => call(api.app, 'POST', '/booking', { body: { show_id: showId, customer_email: buyer, seat_count, waitlist: true } });
    const three = await waitForDecision(api.app, (await join(3)).body.id);
    expect(three).toMatchObject({ status: 'WAITLISTED' });
    expect(await waitForDecision(api.app, (await join(2)).body.id)).toMatchObject({ status: 'FAILED', reason: 'LIMIT_EXCEEDED' });
    expect(await waitForDecision(api.app, (await join(1)).body.id)).toMatchObject({ status: 'WAITLISTED' });
  });

  it('cancelling a WAITLISTED booking leaves the list; closing it fails the rest SOLD_OUT and later joins too', async () => {
    const { showId } = await soldOutShow(1);
    const leaving = await book(showId, { seat_count: 1, waitlist: true });
    const staying = await book(showId, { seat_count: 1, waitlist: true });
    const cancelled = await cancel(leaving.id);
    expect(cancelled.status).toBe(200);
    expect(cancelled.body).toMatchObject({ status: 'CANCELLED', seats: [], from_waitlist: true });
    expect((await cancel(leaving.id)).body.error.code).toBe('BOOKING_CANCELLED');
    expect(await status(staying.id)).toMatchObject({ status: 'WAITLISTED', waitlist_position: 1 });
    // Nothing to pay for while waiting.
    expect((await confirm(staying.id)).body.error.code).toBe('BOOKING_WAITLISTED');

    const closed = await call(api.app, 'POST', `/admin/shows/${showId}/waitlist/close`, { admin: true });
    expect(closed.status).toBe(200);
    expect(closed.body).toEqual({ show_id: showId, closed_at: expect.any(String), failed: 1 });
    expect(await status(staying.id)).toMatchObject({ status: 'FAILED', reason: 'SOLD_OUT' });
    expect((await waitlist(showId)).body).toEqual({ show_id: showId, entries: [], next: null });
    expect((await book(showId, { seat_count: 1, waitlist: true })).decided).toMatchObject({ status: 'FAILED', reason: 'SOLD_OUT' });
    const again = await call(api.app, 'POST', `/admin/shows/${showId}/waitlist/close`, { admin: true });
    expect(again.body).toEqual({ show_id: showId, closed_at: closed.body.closed_at, failed: 0 });
  });

  it('when sales close (the show starts) the entries still waiting fail SOLD_OUT', async () => {
    const show = await createShow(api.app, { total_seats: 1, start_time: new Date(Date.now() + 4_000).toISOString() });
    await book(show.id, { seat_count: 1 });
    const waiting = await book(show.id, { seat_count: 1, waitlist: true });
    expect(waiting.decided).toMatchObject({ status: 'WAITLISTED' });
    expect(await waitForStatus(waiting.id, 'FAILED')).toMatchObject({ reason: 'SOLD_OUT' });
  });
});

describe('bad input', () => {
  it('waitlist with specific seats, or not a boolean, is a 400 naming the field', async () => {
    const show = await createShow(api.app, { total_seats: 2 });
    const withSeats = await call(api.app, 'POST', '/booking', { body: { show_id: show.id, customer_email: email(), seats: ['1'], waitlist: true } });
    expect(withSeats.status).toBe(400);
    expect(withSeats.body.error.details).toEqual([{ field: 'waitlist', problem: expect.stringContaining('best available') }]);
    const notBoolean = await call(api.app, 'POST', '/booking', { body: { show_id: show.id, customer_email: email(), seat_count: 1, waitlist: 'yes' } });
    expect(notBoolean.status).toBe(400);
    expect(notBoolean.body.error.details[0].field).toBe('waitlist');
  });

  it('the admin routes refuse bad ids, unknown shows and bookings, bad pages and missing tokens', async () => {
    const unknown = '00000000-0000-4000-8000-000000000000';
    for (const [method, url] of [
      ['GET', '/admin/shows/not-a-uuid/waitlist'],
      ['POST', '/admin/shows/not-a-uuid/waitlist/close'],
      ['POST', '/admin/bookings/not-a-uuid/refund'],
    ] as const) {
      const reply = await call(api.app, method, url, { admin: true });
      expect(reply.status, url).toBe(400);
      expect(reply.body.error.details[0].field).toBe('id');
      expect((await call(api.app, method, url.replace('not-a-uuid', unknown))).status).toBe(401);
    }
    expect((await waitlist(unknown)).status).toBe(404);
    expect((await call(api.app, 'POST', `/admin/shows/${unknown}/waitlist/close`, { admin: true })).status).toBe(404);
    expect((await refund(unknown)).status).toBe(404);
    const show = await createShow(api.app, { total_seats: 1 });
    for (const query of ['?limit=0', '?limit=abc', '?cursor=nope']) {
      const reply = await waitlist(show.id, query);
      expect(reply.status, query).toBe(400);
      expect(reply.body.error.details[0].field).toBe(query.slice(1, query.indexOf('=')));
    }
  });
});

describe('outbox events', () => {
  it('joining is booking.waitlisted, a refund booking.refunded, and the offer it makes booking.held with from_waitlist', async () => {
    const { showId, holds } = await soldOutShow(1);
    // Subscribed last in this file, so only this show's changes are recorded from here on.
    await ctx.db.insert(webhooks).values({ url: 'http://127.0.0.1:9/hook', events: [...BOOKING_EVENT_TYPES], secret: 'whsec_dGVzdA==' });
    const waiting = await book(showId, { seat_count: 1, waitlist: true });
    expect((await confirm(holds[0]!)).status).toBe(200);
    expect((await refund(holds[0]!)).status).toBe(200);
    const { rows } = await ctx.pool.query<{ type: string; booking_id: string; data: { status: string; from_waitlist: boolean } }>(
      'SELECT type, booking_id, data FROM webhook_events WHERE booking_id = ANY($1) ORDER BY id',
      [[waiting.id, holds[0]]],
    );
    expect(rows.map((row) => [row.type, row.booking_id, row.data.status, row.data.from_waitlist])).toEqual([
      ['booking.waitlisted', waiting.id, 'WAITLISTED', true],
      ['booking.confirmed', holds[0], 'CONFIRMED', false],
      ['booking.refunded', holds[0], 'REFUNDED', false],
      ['booking.held', waiting.id, 'HELD', true],
    ]);
  });
});
