import { setTimeout as delay } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { openTestApi } from './support/context.js';

const { api } = await openTestApi({}, { MAX_EVENT_LOOP_DELAY_MS: '100' });

/** Keeps the event loop busy, as a CPU-bound overload would. */
function blockEventLoop(ms: number): void {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    // spin
  }
}

describe('overload guard', () => {
  it('answers 503 with Retry-After in the JSON error shape while the event loop is saturated', async () => {
    expect((await api.app.inject({ method: 'GET', url: '/shows' })).statusCode).toBe(200);

    // Saturate until the plugin's sampler (once a second) sees it.
    for (let attempt = 0; !api.app.isUnderPressure(); attempt++) {
      if (attempt >= 10) throw new Error('event loop never reported saturated');
      blockEventLoop(1_100);
      await delay(20);
    }
    const shed = await api.app.inject({ method: 'GET', url: '/shows' });
    expect(shed.statusCode).toBe(503);
    expect(shed.headers['retry-after']).toBe('5');
    expect(shed.json()).toEqual({ error: { code: 'OVERLOADED', message: expect.any(String) } });
    const booking = await api.app.inject({ method: 'POST', url: '/booking', payload: {} });
    expect(booking.statusCode).toBe(503);
    // Liveness and scrapes still answer: an orchestrator must not kill a busy process, and
    // the overload must be visible.
    expect((await api.app.inject({ method: 'GET', url: '/health' })).statusCode).toBe(200);
    const scrape = await api.app.inject({ method: 'GET', url: '/metrics' });
    expect(scrape.statusCode).toBe(200);
    expect(scrape.body).toMatch(/ticket_rush_http_requests_total\{method="GET",route="\/shows",status_code="503"\} 1/);

    // And it recovers once the loop is free again.
    for (let waited = 0; api.app.isUnderPressure(); waited += 50) {
      if (waited > 10_000) throw new Error('still under pressure after 10 s');
      await delay(50);
    }
    expect((await api.app.inject({ method: 'GET', url: '/shows' })).statusCode).toBe(200);
    // under-pressure's own status route is not exposed.
    expect((await api.app.inject({ method: 'GET', url: '/status' })).statusCode).toBe(404);
  });
});
