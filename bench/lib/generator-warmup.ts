import { randomUUID } from 'node:crypto';
import { JSON_HEADERS, type HttpClient } from './http.js';

/** A show id no show has: the API answers its bookings 404 after parsing and validating them. */
const NO_SUCH_SHOW = '00000000-0000-4000-8000-000000000000';

/**
 * Before a scenario's clock starts: the generator sends `requests` requests that change nothing
 * (bookings for a show that does not exist, polls of unknown ids, both answered 404) through its
 * own HTTP clients, `lanes` at a time, so that its code is optimised when the measured requests
 * go out. A cold generator sends late: in open loop its lateness counts inside accept latency,
 * and it is the tool's, not the API's (bench/RESULTS.md, session 13). What the API does with
 * these is what its own warm-up did already (services/api/warmup.ts).
 */
export async function warmGenerator(submitHttp: HttpClient, pollHttp: HttpClient, requests: number, lanes: number): Promise<void> {
  let next = 0;
  const body = JSON.stringify({ show_id: NO_SUCH_SHOW, customer_email: 'warm-up@bench.example', seat_count: 1 });
  const lane = async () => {
    for (let index = next++; index < requests; index = next++) {
      const answer =
        index % 2 === 0 ? await submitHttp.send('POST', '/booking', body, JSON_HEADERS) : await pollHttp.send('GET', `/booking/${randomUUID()}/status`);
      if (answer.status !== 404 && answer.status !== 429) throw new Error(`warming the generator up: expected 404, got ${answer.status}`);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(lanes, requests)) }, lane));
}
