import { randomUUID } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { LayoutCache } from '../shared/booking/shows.js';
import { openTestApi } from './support/context.js';
import { call, createShow, waitForDecision } from './support/http.js';

/** Admins list, read and delete shows, and find bookings with full emails; all behind the token. */

const { ctx, api } = await openTestApi({ HOLD_SECONDS: '300' });

const book = async (showId: string, email: string, seats = 1) => {
  const reply = await call(api.app, 'POST', '/booking', { body: { show_id: showId, customer_email: email, seat_count: seats } });
  expect(reply.status, JSON.stringify(reply.body)).toBe(202);
  return reply.body.id as string;
};

/** Decides whatever is queued with a worker that stops afterwards. */
async function decide(...ids: string[]) {
  const worker = await ctx.startWorker();
  try {
    for (const id of ids) await waitForDecision(api.app, id);
  } finally {
    await worker.close();
  }
}

const expectField = (reply: { status: number; body: any }, field: string) => {
  expect(reply.status, JSON.stringify(reply.body)).toBe(400);
  expect(reply.body.error.details).toEqual(expect.arrayContaining([expect.objectContaining({ field })]));
};

describe('admin token', () => {
  it.each([
    ['GET', '/admin/shows'],
    ['GET', `/admin/shows/${randomUUID()}`],
    ['DELETE', `/admin/shows/${randomUUID()}`],
    ['GET', '/admin/bookings'],
  ] as const)('%s %s without the token is 401', async (method, url) => {
    const reply = await call(api.app, method, url, { headers: { authorization: 'Bearer wrong-token-wrong-token' } });
    expect(reply.status).toBe(401);
    expect(reply.body.error.code).toBe('UNAUTHORIZED');
  });
});

describe('GET /admin/shows and /admin/shows/:id', () => {
  it('lists every show, past ones included, a page at a time', async () => {
    const ids = [
      (await createShow(api.app, { name: 'Old', start_time: '2001-01-01T00:00:00Z', total_seats: 1 })).id,
      (await createShow(api.app, { name: 'Soon', start_time: '2031-01-01T00:00:00Z', total_seats: 1 })).id,
      (await createShow(api.app, { name: 'Later', start_time: '2032-01-01T00:00:00Z', total_seats: 1 })).id,
    ];
    const seen: string[] = [];
    for (let next: string | null = '/admin/shows?limit=2'; next; ) {
      const page: { status: number; body: any } = await call(api.app, 'GET', next, { admin: true });
      expect(page.status).toBe(200);
      expect(page.body.shows.length).toBeLessThanOrEqual(2);
      seen.push(...page.body.shows.map((show: { id: string }) => show.id));
      next = page.body.next;
      if (next) expect(next).toMatch(/^\/admin\/shows\?/);
    }
    expect(seen.filter((id) => ids.includes(id))).toEqual(ids);
    const upcoming = await call(api.app, 'GET', '/admin/shows?when=upcoming', { admin: true });
    expect(upcoming.body.shows.map((show: { id: string }) => show.id)).not.toContain(ids[0]);
  });

  it('reads one show, 404 for an unknown id, 400 for a malformed one or a bad page', async () => {
    const show = await createShow(api.app, { total_seats: 2, price_cents: 700 });
    const reply = await call(api.app, 'GET', `/admin/shows/${show.id}`, { admin: true });
    expect(reply.body).toMatchObject({ id: show.id, total_seats: 2, sections: [expect.objectContaining({ price_cents: 700 })] });
    expect((await call(api.app, 'GET', `/admin/shows/${randomUUID()}`, { admin: true })).status).toBe(404);
    expectField(await call(api.app, 'GET', '/admin/shows/not-a-uuid', { admin: true }), 'id');
    expectField(await call(api.app, 'GET', '/admin/shows?limit=500', { admin: true }), 'limit');
    expectField(await call(api.app, 'GET', '/admin/shows?cursor=zzz', { admin: true }), 'cursor');
  });
});

describe('DELETE /admin/shows/:id', () => {
  it('refuses while requests are queued or bookings live, then removes seats, sections and bookings', async () => {
    const show = await createShow(api.app, { sections: [{ name: 'Hall', rows: 2, seats_per_row: 3, price_cents: 100 }] });
    const held = await book(show.id, 'holder@example.com', 2);
    const second = await book(show.id, 'second@example.com', 1);

    const whileQueued = await call(api.app, 'DELETE', `/admin/shows/${show.id}`, { admin: true });
    expect(whileQueued.status).toBe(409);
    expect(whileQueued.body.error.code).toBe('SHOW_HAS_QUEUED_REQUESTS');

    await decide(held, second);
    const whileHeld = await call(api.app, 'DELETE', `/admin/shows/${show.id}`, { admin: true });
    expect(whileHeld.status).toBe(409);
    expect(whileHeld.body.error).toMatchObject({ code: 'SHOW_HAS_LIVE_BOOKINGS', message: expect.stringMatching(/2 booking\(s\) hold seats/) });

    expect((await call(api.app, 'POST', `/booking/${held}/cancel`)).status).toBe(200);
    expect((await call(api.app, 'POST', `/booking/${second}/cancel`)).status).toBe(200);
    const deleted = await call(api.app, 'DELETE', `/admin/shows/${show.id}`, { admin: true });
    expect(deleted.status, JSON.stringify(deleted.body)).toBe(200);
    expect(deleted.body).toEqual({ id: show.id, deleted_seats: 6, deleted_bookings: 2 });

    const left = await ctx.pool.query(
      `SELECT (SELECT count(*) FROM shows WHERE id = $1)::int + (SELECT count(*) FROM seats WHERE show_id = $1)::int
            + (SELECT count(*) FROM show_sections WHERE show_id = $1)::int + (SELECT count(*) FROM bookings WHERE show_id = $1)::int AS n`,
      [show.id],
    );
    expect(left.rows[0].n).toBe(0);
    expect((await call(api.app, 'GET', `/shows/${show.id}`)).status).toBe(404);
    // This process forgot the layout at once: no request for the deleted show is accepted.
    const late = await call(api.app, 'POST', '/booking', { body: { show_id: show.id, customer_email: 'late@example.com', seat_count: 1 } });
    expect(late.status).toBe(404);
    expect((await call(api.app, 'DELETE', `/admin/shows/${show.id}`, { admin: true })).status).toBe(404);
  });

  it('refuses a show with a confirmed booking', async () => {
    const show = await createShow(api.app, { total_seats: 2 });
    const id = await book(show.id, 'payer@example.com');
    await decide(id);
    expect((await call(api.app, 'POST', `/booking/${id}/confirm`, { body: { payment: 'success' } })).status).toBe(200);
    const reply = await call(api.app, 'DELETE', `/admin/shows/${show.id}`, { admin: true });
    expect(reply.status).toBe(409);
    expect(reply.body.error.message).toMatch(/1 are confirmed/);
  });

  it('other processes stop selling a deleted show once their cached layout is older than its bound', async () => {
    const show = await createShow(api.app, { total_seats: 1 });
    const elsewhere = new LayoutCache(ctx.db, 10, 0);
    expect(await elsewhere.get(show.id)).not.toBeNull();
    expect((await call(api.app, 'DELETE', `/admin/shows/${show.id}`, { admin: true })).status).toBe(200);
    expect(await elsewhere.get(show.id)).toBeNull();
  });

  it('a request another API process accepts for a deleted show (within the bound) ends FAILED, never sold', async () => {
    const show = await createShow(api.app, { total_seats: 2 });
    const other = await ctx.startApi();
    expect((await call(other.app, 'GET', `/shows/${show.id}/seats`)).status).toBe(200); // caches the layout there
    expect((await call(api.app, 'DELETE', `/admin/shows/${show.id}`, { admin: true })).status).toBe(200);
    const accepted = await call(other.app, 'POST', '/booking', { body: { show_id: show.id, customer_email: 'ghost@example.com', seat_count: 1 } });
    expect(accepted.status).toBe(202);
    const worker = await ctx.startWorker();
    try {
      expect(await waitForDecision(api.app, accepted.body.id)).toMatchObject({ status: 'FAILED', seats: [] });
    } finally {
      await worker.close();
    }
    const sold = await ctx.pool.query('SELECT count(*)::int AS n FROM bookings WHERE show_id = $1', [show.id]);
    expect(sold.rows[0].n).toBe(0);
  });

  it('answers 400 for a malformed id', async () => {
    expectField(await call(api.app, 'DELETE', '/admin/shows/42', { admin: true }), 'id');
  });
});

describe('GET /admin/bookings', () => {
  let showId: string;
  let otherShowId: string;
  const ids: Record<string, string> = {};

  beforeAll(async () => {
    showId = (await createShow(api.app, { total_seats: 3 })).id;
    otherShowId = (await createShow(api.app, { total_seats: 5 })).id;
    ids.ada1 = await book(showId, 'Ada@Example.com');
    ids.ada2 = await book(otherShowId, 'ada@example.com');
    ids.bob = await book(showId, 'bob@example.com', 2);
    ids.carol = await book(showId, 'carol@example.com');
    await decide(...Object.values(ids));
  });

  const find = async (query: string) => call(api.app, 'GET', `/admin/bookings?${query}`, { admin: true });

  it('filters by show, email (any case) and status, with full emails, newest first', async () => {
    const byShow = await find(`show_id=${showId}`);
    expect(byShow.status).toBe(200);
    expect(byShow.body.bookings.map((b: { id: string }) => b.id).sort()).toEqual([ids.ada1, ids.bob, ids.carol].sort());
    const accepted = byShow.body.bookings.map((b: { accepted_at: string }) => b.accepted_at);
    expect(accepted).toEqual([...accepted].sort().reverse());

    const byEmail = await find('email=ADA@example.com');
    expect(byEmail.body.bookings.map((b: { id: string; customer_email: string }) => [b.id, b.customer_email]).sort()).toEqual(
      [
        [ids.ada1, 'ada@example.com'],
        [ids.ada2, 'ada@example.com'],
      ].sort(),
    );
    const failed = await find(`show_id=${showId}&status=FAILED`);
    expect(failed.body.bookings).toEqual([expect.objectContaining({ id: ids.carol, reason: 'SOLD_OUT', customer_email: 'carol@example.com' })]);
    const both = await find(`show_id=${otherShowId}&email=ada@example.com&status=HELD`);
    expect(both.body.bookings.map((b: { id: string }) => b.id)).toEqual([ids.ada2]);
  });

  it('pages with the filters kept in the next link', async () => {
    const seen: string[] = [];
    for (let next: string | null = `/admin/bookings?show_id=${showId}&limit=1`; next; ) {
      const page: { status: number; body: any } = await call(api.app, 'GET', next, { admin: true });
      expect(page.body.bookings.length).toBeLessThanOrEqual(1);
      seen.push(...page.body.bookings.map((b: { id: string }) => b.id));
      next = page.body.next;
    }
    expect(seen.sort()).toEqual([ids.ada1, ids.bob, ids.carol].sort());
  });

  it.each([
    ['show_id=nope', 'show_id'],
    ['email=not-an-email', 'email'],
    ['email=a%00b@example.com', 'email'],
    ['status=QUEUED', 'status'],
    ['status=held', 'status'],
    ['limit=0', 'limit'],
    ['cursor=%00', 'cursor'],
  ])('refuses %s with 400 naming %s', async (query, field) => {
    expectField(await find(query), field);
  });
});
