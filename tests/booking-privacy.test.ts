import { describe, expect, it } from 'vitest';
import { maskEmail } from '../shared/booking/view.js';
import { openTestApi } from './support/context.js';
import { call, createShow, waitForDecision } from './support/http.js';

/**
 * Whoever holds a booking id can read the booking, so public reads carry the email masked;
 * the full address stays in the database for admin reads (tests/admin.test.ts).
 */

const { ctx, api } = await openTestApi({ HOLD_SECONDS: '300' });
const showId = (await createShow(api.app, { total_seats: 10 })).id;

const book = async (email: string) => {
  const reply = await call(api.app, 'POST', '/booking', { body: { show_id: showId, customer_email: email, seat_count: 1 } });
  expect(reply.status).toBe(202);
  return reply.body.id as string;
};

describe('maskEmail', () => {
  it.each([
    ['ada@example.com', 'a***@example.com'],
    ['a@example.com', 'a***@example.com'],
    ['grace.hopper+tickets@navy.mil', 'g***@navy.mil'],
    ['"odd@local"@example.com', '"***@example.com'],
    ['no-at-sign', '***'],
  ])('%s → %s', (email, masked) => {
    expect(maskEmail(email)).toBe(masked);
  });
});

describe('public booking reads', () => {
  it('GET /booking/:id masks the email while QUEUED and once decided; confirm and cancel answers too', async () => {
    const confirmedId = await book('ada.lovelace@example.com');
    const cancelledId = await book('grace@example.com');

    const queued = await call(api.app, 'GET', `/booking/${confirmedId}`);
    expect(queued.body).toMatchObject({ status: 'QUEUED', customer_email: 'a***@example.com' });

    const worker = await ctx.startWorker();
    await waitForDecision(api.app, confirmedId);
    await waitForDecision(api.app, cancelledId);
    await worker.close();

    const held = await call(api.app, 'GET', `/booking/${confirmedId}`);
    expect(held.body).toMatchObject({ status: 'HELD', customer_email: 'a***@example.com' });
    const confirmed = await call(api.app, 'POST', `/booking/${confirmedId}/confirm`, { body: { payment: 'success' } });
    expect(confirmed.body).toMatchObject({ status: 'CONFIRMED', customer_email: 'a***@example.com' });
    const cancelled = await call(api.app, 'POST', `/booking/${cancelledId}/cancel`);
    expect(cancelled.body).toMatchObject({ status: 'CANCELLED', customer_email: 'g***@example.com' });

    for (const reply of [queued, held, confirmed, cancelled]) {
      expect(JSON.stringify(reply.body)).not.toMatch(/ada\.lovelace|grace@/);
    }
    // Masking is a view: the stored address is whole.
    const stored = await ctx.pool.query('SELECT customer_email FROM bookings WHERE id = $1', [confirmedId]);
    expect(stored.rows[0].customer_email).toBe('ada.lovelace@example.com');
  });
});
