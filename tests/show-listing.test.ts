import { beforeAll, describe, expect, it } from 'vitest';
import { openTestApi } from './support/context.js';
import { call, createShow } from './support/http.js';

/**
 * GET /shows pages through every show (it used to stop silently at 500): `limit` (default 50,
 * at most 200), an opaque `cursor`, a `next` link; upcoming shows by default, past ones on request.
 */

const UPCOMING = 61;
const PAST = 3;

const { api } = await openTestApi();
const upcoming: string[] = [];
const past: string[] = [];

beforeAll(async () => {
  // Two shows share each start time, so the id breaks ties across page boundaries.
  for (let i = 0; i < UPCOMING; i++) {
    const day = String(1 + Math.floor(i / 2)).padStart(2, '0');
    upcoming.push((await createShow(api.app, { name: `Upcoming ${i}`, start_time: `2031-01-${day}T20:00:00Z`, total_seats: 1 })).id);
  }
  for (let i = 0; i < PAST; i++) {
    past.push((await createShow(api.app, { name: `Past ${i}`, start_time: `2001-0${i + 1}-01T20:00:00Z`, total_seats: 1 })).id);
  }
});

type Show = { id: string; start_time: string };
type Listing = { shows: Show[]; next: string | null };

/** Follows `next` links from `url` to the last page. */
async function walk(url: string): Promise<{ pages: Listing[]; shows: Show[] }> {
  const pages: Listing[] = [];
  for (let next: string | null = url; next; ) {
    const reply: { status: number; body: Listing } = await call<Listing>(api.app, 'GET', next);
    expect(reply.status, JSON.stringify(reply.body)).toBe(200);
    pages.push(reply.body);
    next = reply.body.next;
    expect(pages.length).toBeLessThan(100);
  }
  return { pages, shows: pages.flatMap((page) => page.shows) };
}

describe('GET /shows', () => {
  it('answers 50 upcoming shows, soonest first, and a next link to the rest', async () => {
    const first = await call<Listing>(api.app, 'GET', '/shows');
    expect(first.body.shows).toHaveLength(50);
    expect(first.body.next).toMatch(/^\/shows\?.*cursor=/);
    const { pages, shows } = await walk('/shows');
    expect(pages.map((page) => page.shows.length)).toEqual([50, UPCOMING - 50]);
    expect(shows.map((show) => show.id).sort()).toEqual([...upcoming].sort());
    const times = shows.map((show) => show.start_time);
    expect(times).toEqual([...times].sort());
    expect(pages.at(-1)!.next).toBeNull();
  });

  it('walks every show exactly once with a small limit, ties on start_time included', async () => {
    const { pages, shows } = await walk('/shows?limit=7');
    expect(pages).toHaveLength(Math.ceil(UPCOMING / 7));
    expect(new Set(shows.map((show) => show.id)).size).toBe(UPCOMING);
    expect(pages.slice(0, -1).every((page) => page.shows.length === 7)).toBe(true);
  });

  it('lists past shows on request, most recent first, and all of them with when=all', async () => {
    const pastPage = await call<Listing>(api.app, 'GET', '/shows?when=past');
    expect(pastPage.body).toEqual({ shows: expect.any(Array), next: null });
    expect(pastPage.body.shows.map((show) => show.id)).toEqual([...past].reverse());
    const { shows } = await walk('/shows?when=all&limit=200');
    expect(shows).toHaveLength(UPCOMING + PAST);
    expect(shows.slice(0, PAST).map((show) => show.id)).toEqual(past);
  });

  it('keeps the filter in the next link', async () => {
    const { shows } = await walk('/shows?when=past&limit=1');
    expect(shows.map((show) => show.id)).toEqual([...past].reverse());
  });

  it.each([
    ['limit=0', 'limit'],
    ['limit=201', 'limit'],
    ['limit=abc', 'limit'],
    ['limit=2.5', 'limit'],
    ['cursor=not-a-cursor', 'cursor'],
    [`cursor=${Buffer.from('["yesterday","x"]').toString('base64url')}`, 'cursor'],
    [`cursor=${'A'.repeat(500)}`, 'cursor'],
    ['when=soon', 'when'],
  ])('refuses %s with 400 naming %s', async (query, field) => {
    const reply = await call(api.app, 'GET', `/shows?${query}`);
    expect(reply.status).toBe(400);
    expect(reply.body.error.details).toEqual(expect.arrayContaining([expect.objectContaining({ field })]));
  });
});
