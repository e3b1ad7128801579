import { performance } from 'node:perf_hooks';
import { JSON_HEADERS, networkErrorName, type HttpClient } from './http.js';
import type { Arrival } from './options.js';
import type { RequestPlan } from './plan.js';
import type { Poller } from './poller.js';
import type { RunStats } from './stats.js';

/**
 * Sends the booking requests. `burst` is closed-loop: C lanes each send the next request as
 * soon as their previous one is answered, so C requests are in flight until all are sent.
 * `ramp` and `rate` are open-loop: request i has a scheduled send time and its accept latency
 * is measured from that time, so a slow server cannot hide its slowness by slowing the
 * generator down (no coordinated omission); C still caps what is in flight.
 *
 * With `submitWaitSeconds`, each request asks for its decision in the same answer (Prefer:
 * wait): a 200 carries it and no poll follows; a 202 (the wait ran out, or the API had no slot
 * to wait in) is polled as usual. A request answered with its decision has no accept latency
 * of its own (its answer came at the decision), so accept latency counts the 202s alone.
 */

export type GeneratorSettings = {
  requests: number;
  concurrency: number;
  arrival: Arrival;
  maxRetries: number;
  /** Seconds each booking request asks the API to wait for its decision (Prefer: wait); 0: answered at acceptance. */
  submitWaitSeconds: number;
};

export class LoadGenerator {
  private next = 0;
  private readonly preferWait: Readonly<Record<string, string>> | undefined;

  constructor(
    private readonly http: HttpClient,
    private readonly plan: RequestPlan,
    private readonly stats: RunStats,
    private readonly poller: Poller,
    private readonly settings: GeneratorSettings,
  ) {
    this.preferWait = settings.submitWaitSeconds > 0 ? { prefer: `wait=${settings.submitWaitSeconds}` } : undefined;
  }

  async run(): Promise<void> {
    this.stats.startedAt = performance.now();
    if (this.settings.arrival.kind === 'burst') {
      const lanes = Math.min(this.settings.concurrency, this.settings.requests);
      await Promise.all(Array.from({ length: lanes }, () => this.lane()));
    } else {
      await this.scheduled();
    }
  }

  private async lane(): Promise<void> {
    for (let index = this.next++; index < this.settings.requests; index = this.next++) {
      await this.submit(index, performance.now());
    }
  }

  /** Seconds after the start at which request `index` is due. */
  private dueAt(index: number): number {
    const arrival = this.settings.arrival;
    if (arrival.kind === 'rate') return index / arrival.perSecond;
    if (arrival.kind === 'ramp') return arrival.seconds * Math.sqrt(index / this.settings.requests); // rate grows linearly
    return 0;
  }

  private scheduled(): Promise<void> {
    const start = this.stats.startedAt;
    let inFlight = 0;
    let done = 0;
    let timer: NodeJS.Timeout | undefined;
    return new Promise((resolve) => {
      const dispatch = () => {
        clearTimeout(timer);
        timer = undefined;
        const now = performance.now();
        while (this.next < this.settings.requests && inFlight < this.settings.concurrency) {
          const due = start + this.dueAt(this.next) * 1_000;
          if (due > now) {
            timer = setTimeout(dispatch, Math.max(1, due - now));
            break;
          }
          const index = this.next++;
          inFlight++;
          this.stats.sendLag.record(now - due);
          this.stats.recentSendLags.push(now - due);
          void this.submit(index, due).finally(() => {
            inFlight--;
            done++;
            if (done === this.settings.requests) resolve();
            else if (timer === undefined) dispatch();
          });
        }
      };
      dispatch();
    });
  }

  /** One booking request, retried after 429/503 as the server's Retry-After says. */
  private async submit(index: number, startedAt: number): Promise<void> {
    const request = this.plan.request(index);
    const headers =
      request.idempotencyKey || this.preferWait
        ? { ...JSON_HEADERS, ...this.preferWait, ...(request.idempotencyKey ? { 'idempotency-key': request.idempotencyKey } : {}) }
        : JSON_HEADERS;
    this.stats.submitted++;
    this.stats.inFlight++;
    try {
      for (let attempt = 0, sentAt = startedAt; ; attempt++, sentAt = performance.now()) {
        let answer;
        try {
          answer = await this.http.send('POST', '/booking', request.body, headers);
        } catch (error) {
          this.stats.errors.add(`submit:${networkErrorName(error)}`);
          this.stats.notAccepted++;
          return;
        }
        this.stats.http.submit.add(String(answer.status));
        if (answer.status === 200 && this.preferWait) {
          const body = answer.body as { id: string; status: string; reason?: string };
          this.stats.accepted++;
          this.stats.lastAcceptedAt = performance.now();
          this.stats.acceptedIds.push(body.id);
          // Not awaited: settling the hold is the poller's business, as after a poll; the lane moves on.
          void this.poller.decidedOnSubmit(body.id, sentAt, body);
          return;
        }
        if (answer.status === 202) {
          const now = performance.now();
          const body = answer.body as { id: string; position: number | null };
          this.stats.acceptLatency.record(now - sentAt);
          this.stats.recentAccepts.push(now - sentAt);
          this.stats.accepted++;
          this.stats.lastAcceptedAt = now;
          this.stats.acceptedIds.push(body.id);
          if (typeof body.position === 'number') this.stats.latestAcceptPosition = Math.max(this.stats.latestAcceptPosition ?? 0, body.position);
          this.poller.track(body.id, sentAt, answer.retryAfterMs);
          return;
        }
        if ((answer.status === 429 || answer.status === 503) && attempt < this.settings.maxRetries) {
          this.stats.retried.add(`submit:${answer.status}`);
          await new Promise((resolve) => setTimeout(resolve, answer.retryAfterMs ?? 1_000));
          continue;
        }
        const code = (answer.body as { error?: { code?: string } } | null)?.error?.code;
        this.stats.errors.add(`submit:${answer.status}${code ? `:${code}` : ''}`);
        this.stats.notAccepted++;
        return;
      }
    } finally {
      this.stats.inFlight--;
    }
  }
}
