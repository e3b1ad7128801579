import { describe, expect, it } from 'vitest';
import { openTestApi } from './support/context.js';
import { call, createShow, waitForDecision } from './support/http.js';

const { ctx, api } = await openTestApi({ HOLD_SECONDS: '60' });
await ctx.startWorker();

describe('book → poll → confirm', () => {
  it('holds the best adjacent seats, then books them on payment', async () => {
    const show = await createShow(api.app, {
      sections: [
        { name: 'VIP', rows: 2, seats_per_row: 5, price_cents: 9900 },
        { name: 'Floor', rows: 3, seats_per_row: 10, price_cents: 4900 },
      ],
    });
    const accepted = await call(api.app, 'POST', '/booking', {
      body: { show_id: show.id, customer_email: 'Ada@Example.com', seat_count: 3, section: 'Floor' },
    });
    expect(accepted.status).toBe(202);
    expect(accepted.body).toMatchObject({ status: 'QUEUED', status_url: `/booking/${accepted.body.id}/status` });
    expect(accepted.headers.location).toBe(`/booking/${accepted.body.id}/status`);
    expect(accepted.headers['retry-after']).toBeDefined();

    const decided = await waitForDecision(api.app, accepted.body.id);
    expect(decided).toMatchObject({ status: 'HELD', seats: ['Floor-A-1', 'Floor-A-2', 'Floor-A-3'] });
    expect(Date.parse(decided.hold_expires_at)).toBeGreaterThan(Date.now());

    const confirmed = await call(api.app, 'POST', `/booking/${accepted.body.id}/confirm`, { body: { payment: 'success' } });
    expect(confirmed.status).toBe(200);
    expect(confirmed.body).toMatchObject({ status: 'CONFIRMED', customer_email: 'a***@example.com' });

    const again = await call(api.app, 'POST', `/booking/${accepted.body.id}/confirm`, { body: { payment: 'success' } });
    expect(again.status).toBe(200);
    expect(again.body.confirmed_at).toBe(confirmed.body.confirmed_at);

    const seats = await call(api.app, 'GET', `/shows/${show.id}/seats`);
    const booked = seats.body.filter((seat: { status: string }) => seat.status === 'BOOKED').map((seat: { label: string }) => seat.label);
    expect(booked).toEqual(['Floor-A-1', 'Floor-A-2', 'Floor-A-3']);
  });
});
