import { describe, expect, it } from 'vitest';
import { openTestApi } from './support/context.js';
import { call, createShow, waitForDecision } from './support/http.js';

/**
 * General-admission shows can be priced, and every booking says what it costs: `total_cents`
 * is the sum of the prices of the seats it holds or held (0 if it never got any, null while
 * it is still QUEUED).
 */

const { ctx, api } = await openTestApi({ HOLD_SECONDS: '300', MAX_SEATS_PER_CUSTOMER: '100' });

const book = async (body: Record<string, unknown>) => {
  const reply = await call(api.app, 'POST', '/booking', { body: { customer_email: 'payer@example.com', ...body } });
  expect(reply.status, JSON.stringify(reply.body)).toBe(202);
  return reply.body.id as string;
};
const whole = async (id: string) => (await call(api.app, 'GET', `/booking/${id}`)).body;

describe('general-admission price', () => {
  it('POST /admin/shows takes price_cents with total_seats and prices every seat', async () => {
    const show = await createShow(api.app, { total_seats: 4, price_cents: 2_500 });
    expect(show.sections).toEqual([expect.objectContaining({ name: 'GA', price_cents: 2_500, total_seats: 4 })]);
    const seats = await call(api.app, 'GET', `/shows/${show.id}/seats`);
    expect(seats.body.map((seat: { price_cents: number }) => seat.price_cents)).toEqual([2_500, 2_500, 2_500, 2_500]);
  });

  it('a GA show without price_cents is free, as before', async () => {
    const show = await createShow(api.app, { total_seats: 1 });
    expect(show.sections).toEqual([expect.objectContaining({ price_cents: 0 })]);
  });

  it.each([
    ['price_cents with sections', { sections: [{ name: 'A', rows: 1, seats_per_row: 1, price_cents: 1 }], price_cents: 5 }],
    ['a negative price', { total_seats: 2, price_cents: -1 }],
    ['a fractional price', { total_seats: 2, price_cents: 1.5 }],
    ['a price as a string', { total_seats: 2, price_cents: '100' }],
  ])('refuses %s with 400 naming price_cents', async (_name, body) => {
    const reply = await call(api.app, 'POST', '/admin/shows', { admin: true, body: { name: 'Priced', start_time: '2030-01-01T20:00:00Z', ...body } });
    expect(reply.status).toBe(400);
    expect(reply.body.error.details).toEqual(expect.arrayContaining([expect.objectContaining({ field: 'price_cents' })]));
  });
});

describe('total_cents', () => {
  it('is null while QUEUED, then the held seats’ price, kept through confirm, cancel and a failed payment; 0 for a booking that got no seats', async () => {
    const ga = await createShow(api.app, { total_seats: 5, price_cents: 1_250 });
    const reserved = await createShow(api.app, {
      sections: [
        { name: 'VIP', rows: 1, seats_per_row: 2, price_cents: 10_000 },
        { name: 'Floor', rows: 1, seats_per_row: 2, price_cents: 3_000 },
      ],
    });
    const confirmed = await book({ show_id: ga.id, seat_count: 2 });
    const cancelled = await book({ show_id: ga.id, seat_count: 1 });
    const unpaid = await book({ show_id: ga.id, seat_count: 2 });
    const mixed = await book({ show_id: reserved.id, seats: ['VIP-A-1', 'Floor-A-2'] });
    expect(await whole(confirmed)).toMatchObject({ status: 'QUEUED', total_cents: null });

    await ctx.startWorker();
    for (const id of [confirmed, cancelled, unpaid, mixed]) await waitForDecision(api.app, id);
    // Asked once the five seats are held (the worker need not decide batches in arrival order).
    const soldOut = await book({ show_id: ga.id, seat_count: 1 });
    await waitForDecision(api.app, soldOut);

    expect(await whole(confirmed)).toMatchObject({ status: 'HELD', total_cents: 2_500 });
    expect(await whole(mixed)).toMatchObject({ status: 'HELD', total_cents: 13_000 });
    expect(await whole(soldOut)).toMatchObject({ status: 'FAILED', reason: 'SOLD_OUT', total_cents: 0 });

    const paid = await call(api.app, 'POST', `/booking/${confirmed}/confirm`, { body: { payment: 'success' } });
    expect(paid.body).toMatchObject({ status: 'CONFIRMED', total_cents: 2_500 });
    const gone = await call(api.app, 'POST', `/booking/${cancelled}/cancel`);
    expect(gone.body).toMatchObject({ status: 'CANCELLED', total_cents: 1_250 });
    const declined = await call(api.app, 'POST', `/booking/${unpaid}/confirm`, { body: { payment: 'fail' } });
    expect(declined.body).toMatchObject({ status: 'FAILED', reason: 'PAYMENT_FAILED', total_cents: 2_500 });
  });

  it('is documented on the booking view in the OpenAPI document', async () => {
    const doc = await call(api.app, 'GET', '/docs/json');
    const schema = doc.body.paths['/booking/{id}'].get.responses['200'].content['application/json'].schema;
    expect(schema.properties.total_cents.description).toMatch(/seats/);
  });
});
