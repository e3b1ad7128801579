import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { MAX_STALENESS_MS, SeatMapCache } from '../services/api/seat-map.js';
import { listSeats } from '../shared/booking/shows.js';
import { openTestApi } from './support/context.js';
import { call, createShow, waitForDecision } from './support/http.js';
import { waitFor } from './support/wait.js';

/** GET /shows/:id/seats: cached, versioned (ETag), compressed, filterable by section, and fresh. */

const { ctx, api } = await openTestApi();
const show: { id: string } = await createShow(api.app, {
  sections: [
    { name: 'Floor', rows: 3, seats_per_row: 10, price_cents: 5_000 },
    { name: 'Balcony', rows: 2, seats_per_row: 10, price_cents: 2_500 },
  ],
});

const seatsOf = (url: string, headers: Record<string, string> = {}) => api.app.inject({ method: 'GET', url, headers });

describe('GET /shows/:id/seats', () => {
  it('answers the same seats as listing them, with a strong ETag; If-None-Match with it answers 304 without a body', async () => {
    const first = await seatsOf(`/shows/${show.id}/seats`);
    expect(first.statusCode).toBe(200);
    expect(first.headers['content-type']).toMatch(/^application\/json/);
    expect(first.json()).toEqual(await listSeats(ctx.db, show.id));
    const etag = first.headers.etag as string;
    expect(etag).toMatch(/^"[\w-]+"$/);
    expect(first.headers['cache-control']).toBe('no-cache');

    const again = await seatsOf(`/shows/${show.id}/seats`, { 'if-none-match': etag });
    expect(again.statusCode).toBe(304);
    expect(again.body).toBe('');
    expect(again.headers.etag).toBe(etag);
    // A list of tags, and the weak form a proxy may have made of it, match too.
    expect((await seatsOf(`/shows/${show.id}/seats`, { 'if-none-match': `"other", W/${etag}` })).statusCode).toBe(304);
    expect((await seatsOf(`/shows/${show.id}/seats`, { 'if-none-match': '"other"' })).statusCode).toBe(200);
  });

  it('is gzip or br compressed when the client accepts it, identical once decoded', async () => {
    const plain = await seatsOf(`/shows/${show.id}/seats`);
    const gzipped = await seatsOf(`/shows/${show.id}/seats`, { 'accept-encoding': 'gzip' });
    expect(gzipped.headers['content-encoding']).toBe('gzip');
    expect(gzipped.headers.vary).toMatch(/Accept-Encoding/i);
    expect(gunzipSync(gzipped.rawPayload).toString()).toBe(plain.body);
    const brotli = await seatsOf(`/shows/${show.id}/seats`, { 'accept-encoding': 'gzip, deflate, br' });
    expect(brotli.headers['content-encoding']).toBe('br');
    expect(brotliDecompressSync(brotli.rawPayload).toString()).toBe(plain.body);
    // The representation's tag does not depend on its encoding here: one map, one tag.
    expect(gzipped.headers.etag).toBe(plain.headers.etag);
    // A client that accepts neither gets the JSON as is.
    const identity = await seatsOf(`/shows/${show.id}/seats`, { 'accept-encoding': 'deflate' });
    expect(identity.headers['content-encoding']).toBeUndefined();
    expect(identity.body).toBe(plain.body);
  });

  it('?section= gives one section only; an unknown section is a 400 naming `section`', async () => {
    const balcony = await seatsOf(`/shows/${show.id}/seats?section=Balcony`);
    expect(balcony.statusCode).toBe(200);
    const seats = balcony.json() as Array<{ section: string }>;
    expect(seats).toHaveLength(20);
    expect(new Set(seats.map((seat) => seat.section))).toEqual(new Set(['Balcony']));
    expect(balcony.headers.etag).not.toBe((await seatsOf(`/shows/${show.id}/seats`)).headers.etag);

    for (const bad of ['Stalls', 'floor', '', '%00', 'x'.repeat(40)]) {
      const reply = await call(api.app, 'GET', `/shows/${show.id}/seats?section=${encodeURIComponent(bad)}`);
      expect({ bad, status: reply.status }).toEqual({ bad, status: 400 });
      expect(reply.body.error.details).toContainEqual(expect.objectContaining({ field: 'section' }));
    }
  });

  it('shows a booking\'s seats as HELD (a new ETag) once the worker has decided it', async () => {
    const before = await seatsOf(`/shows/${show.id}/seats`);
    const etag = before.headers.etag as string;
    await ctx.startWorker();
    const booking = await call(api.app, 'POST', '/booking', { body: { show_id: show.id, customer_email: 'fresh@example.com', seats: ['Floor-B-3'] } });
    expect(booking.status).toBe(202);
    expect((await waitForDecision(api.app, booking.body.id)).status).toBe('HELD');
    const after = await waitFor(async () => {
      const reply = await seatsOf(`/shows/${show.id}/seats`, { 'if-none-match': etag });
      return reply.statusCode === 200 ? reply : undefined;
    }, 'the seat map to change');
    expect(after.headers.etag).not.toBe(etag);
    expect((after.json() as Array<{ label: string; status: string }>).find((seat) => seat.label === 'Floor-B-3')?.status).toBe('HELD');
  });
});

describe('SeatMapCache', () => {
  it('concurrent reads share one build; a later read rebuilds only when a seat changed', async () => {
    let clock = 1_000_000;
    const cache = new SeatMapCache(ctx.db, () => clock);
    const fresh = await createShow(api.app, { total_seats: 30 });
    const bodies = await Promise.all(Array.from({ length: 20 }, (_, index) => cache.get(fresh.id, index % 2 ? 'GA' : undefined)));
    expect(cache.builds).toBe(1);
    // General admission: the one section "GA" is the whole map, so the same bytes and tag.
    expect(new Set(bodies.map((body) => body.etag)).size).toBe(1);

    // Past the staleness bound with nothing changed: checked, not rebuilt, same tag.
    clock += MAX_STALENESS_MS;
    expect((await cache.get(fresh.id)).etag).toBe(bodies[0]!.etag);
    expect(cache.builds).toBe(1);

    await ctx.startWorker();
    const booking = await call(api.app, 'POST', '/booking', { body: { show_id: fresh.id, customer_email: 'cache@example.com', seat_count: 2 } });
    expect((await waitForDecision(api.app, booking.body.id)).status).toBe('HELD');
    // Within the bound the snapshot is served as it is...
    expect((await cache.get(fresh.id)).etag).toBe(bodies[0]!.etag);
    // ...and past it the change is seen.
    clock += MAX_STALENESS_MS;
    const changed = await cache.get(fresh.id);
    expect(changed.etag).not.toBe(bodies[0]!.etag);
    expect(cache.builds).toBe(2);
    const seats = JSON.parse((await changed.encoded('identity')).toString()) as Array<{ status: string }>;
    expect(seats.filter((seat) => seat.status === 'HELD')).toHaveLength(2);
  });
});
