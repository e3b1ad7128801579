import { describe, expect, it } from 'vitest';
import { openTestApi } from './support/context.js';
import { call, createShow } from './support/http.js';
import { waitFor } from './support/wait.js';

/**
 * A show's sale closes at its sales_close_at, by default its start: POST /booking answers 409
 * SALE_CLOSED (tests/sale-schedule.test.ts covers a close set apart from the start).
 */

const { api } = await openTestApi();

const book = (showId: string, email = 'late@example.com') =>
  call(api.app, 'POST', '/booking', { body: { show_id: showId, customer_email: email, seat_count: 1 } });

describe('POST /booking after the show has started', () => {
  it('answers 409 SALE_CLOSED naming the start time (the default close) in the message and the details', async () => {
    const started = new Date(Math.floor((Date.now() - 3_600_000) / 1_000) * 1_000);
    const show = await createShow(api.app, { total_seats: 10, start_time: started.toISOString() });
    const reply = await book(show.id);
    expect(reply.status).toBe(409);
    expect(reply.body).toEqual({
      error: {
        code: 'SALE_CLOSED',
        message: expect.stringContaining(started.toISOString()),
        details: [{ field: 'show_id', problem: `the sale closed at ${started.toISOString()} (sales_close_at)` }],
      },
    });
  });

  it('closes a show whose layout was cached while it was still on sale, at its start time', async () => {
    const startsAt = new Date(Date.now() + 1_500);
    const show = await createShow(api.app, { total_seats: 1_000, start_time: startsAt.toISOString() });
    expect((await book(show.id, 'early@example.com')).status).toBe(202);
    const closed = await waitFor(async () => {
      const reply = await book(show.id);
      if (reply.status !== 202 && reply.status !== 409) throw new Error(`unexpected ${reply.status}`);
      return reply.status === 409 ? reply : undefined;
    }, 'the sale to close');
    expect(closed.body.error.code).toBe('SALE_CLOSED');
    expect(Date.now()).toBeGreaterThanOrEqual(startsAt.getTime());
  });
});
