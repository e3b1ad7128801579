import { randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import type { FastifyRequest } from 'fastify';

/**
 * The requests a freshly started API sends itself before /ready says ready.
 *
 * A new process runs its first few thousand requests at about two thirds of its later speed:
 * V8 has yet to compile the hot paths (Node's HTTP parser and writer, Fastify's routing and
 * hooks, validation, serialisation, ioredis). A replica started for a sale's opening would pay
 * that exactly when the burst arrives (bench/RESULTS.md, session 12). So it sends itself, over
 * loopback through its real socket, requests that run the booking routes' code and change
 * nothing: bookings for a show that does not exist (validated, then 404) and status polls, with
 * and without `Prefer: wait`, of ids nobody has (404). They carry a token of this process, so
 * they are not rate-limited and not written to the access log; /metrics counts them as the 404s
 * they are.
 */

/** A show id no show has: version 4 UUIDs are random, this one is all zeros but its version bits. */
const NO_SHOW = '00000000-0000-4000-8000-000000000000';
const HEADER = 'x-ticket-rush-warm-up';

export class WarmUp {
  private readonly token = randomBytes(24).toString('base64url');
  private finished = false;

  /** `requests` 0: nothing to do, ready at once. */
  constructor(private readonly requests: number) {
    if (requests === 0) this.finished = true;
  }

  get done(): boolean {
    return this.finished;
  }

  /** Whether a request is one of this process's own warm-up requests: never once the warm-up is done, without reading a header. */
  isWarmUp(request: FastifyRequest): boolean {
    if (this.finished) return false;
    const given = request.headers[HEADER];
    if (typeof given !== 'string' || given.length !== this.token.length) return false;
    return timingSafeEqual(Buffer.from(given), Buffer.from(this.token));
  }

  /** Sends the requests to `url` (this process), `concurrency` at a time; always ends done. */
  async run(url: string, concurrency = 16): Promise<{ requests: number; ms: number }> {
    const started = performance.now();
    const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
    let next = 0;
    const lane = async () => {
      while (next < this.requests) await this.send(url, agent, next++);
    };
    try {
      await Promise.all(Array.from({ length: Math.min(concurrency, this.requests) }, lane));
    } finally {
      agent.destroy();
      this.finished = true;
    }
    return { requests: this.requests, ms: Math.round(performance.now() - started) };
  }

  private send(url: string, agent: http.Agent, n: number): Promise<void> {
    const headers: http.OutgoingHttpHeaders = { [HEADER]: this.token };
    let path: string;
    let body: string | undefined;
    if (n % 2 === 0) {
      path = '/booking';
      body = JSON.stringify({ show_id: NO_SHOW, customer_email: 'warm-up@ticket-rush.invalid', seat_count: 1 });
      headers['content-type'] = 'application/json';
    } else {
      path = `/booking/${randomUUID()}/status`;
      if (n % 4 === 1) headers.prefer = 'wait=1';
    }
    return new Promise((resolve, reject) => {
      const request = http.request(`${url}${path}`, { method: body ? 'POST' : 'GET', agent, headers }, (response) => {
        response.resume();
        response.on('end', resolve);
        response.on('error', reject);
      });
      request.on('error', reject);
      request.end(body);
    });
  }
}
