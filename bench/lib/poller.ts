import { performance } from 'node:perf_hooks';
import { networkErrorName, type HttpClient } from './http.js';
import type { Random } from './random.js';
import type { RunStats } from './stats.js';

/**
 * Follows every accepted request to its decision, as a client app would: polls its status no
 * sooner than --poll-ms and never before the server's Retry-After, then confirms, cancels or
 * abandons a hold. With --poll-wait, each poll asks the API to hold its answer until the
 * decision (`Prefer: wait=N`), so a request usually needs one poll; a poll the API answered
 * without waiting (its stream cap) falls back to Retry-After. At most `maxInFlight` polls run at once; a poll that has to wait for a free
 * slot is counted as poll lag, so an overloaded generator shows up in the report.
 */

type Tracked = { id: string; submittedAt: number; due: number };

/** Binary min-heap on `due`. */
class DueHeap {
  private readonly items: Tracked[] = [];

  get size(): number {
    return this.items.length;
  }

  peek(): Tracked | undefined {
    return this.items[0];
  }

  push(item: Tracked): void {
    const items = this.items;
    items.push(item);
    let index = items.length - 1;
    while (index > 0) {
      const parent = (index - 1) >> 1;
      if (items[parent]!.due <= item.due) break;
      items[index] = items[parent]!;
      index = parent;
    }
    items[index] = item;
  }

  pop(): Tracked | undefined {
    const items = this.items;
    const top = items[0];
    const last = items.pop();
    if (items.length === 0 || !last) return top;
    let index = 0;
    for (;;) {
      const left = 2 * index + 1;
      if (left >= items.length) break;
      const right = left + 1;
      const child = right < items.length && items[right]!.due < items[left]!.due ? right : left;
      if (items[child]!.due >= last.due) break;
      items[index] = items[child]!;
      index = child;
    }
    items[index] = last;
    return top;
  }
}

export type PollerSettings = {
  pollMs: number;
  maxInFlight: number;
  confirmRatio: number;
  cancelShare: number;
  maxRetries: number;
  /** Seconds each status poll asks the API to wait for the decision (Prefer: wait); 0: plain polls. */
  waitSeconds: number;
  /** No poll before this moment (performance.now() ms): a scheduled sale decides nothing before it opens. */
  firstPollAt?: number;
};

const CONFIRM_BODY = JSON.stringify({ payment: 'success' });

export class Poller {
  private readonly heap = new DueHeap();
  private inFlight = 0;
  /** Accepted requests not yet decided, plus settle calls not yet answered. */
  private pending = 0;
  private timer: NodeJS.Timeout | undefined;
  private timerDue = Infinity;
  private submissionsDone = false;
  private stopped = false;
  private resolveIdle: (() => void) | undefined;
  private readonly pollHeaders: Readonly<Record<string, string>> | undefined;
  readonly undecided = new Set<string>();

  constructor(
    private readonly http: HttpClient,
    private readonly stats: RunStats,
    private readonly random: Random,
    private readonly settings: PollerSettings,
  ) {
    this.pollHeaders = settings.waitSeconds > 0 ? { prefer: `wait=${settings.waitSeconds}` } : undefined;
  }

  get backlog(): number {
    return this.heap.size;
  }

  /** A request was accepted at `submittedAt`; its first poll goes out after the 202's Retry-After. */
  track(id: string, submittedAt: number, retryAfterMs: number | null): void {
    this.pending++;
    this.undecided.add(id);
    const due = performance.now() + Math.max(this.settings.pollMs, retryAfterMs ?? 0);
    this.heap.push({ id, submittedAt, due: Math.max(due, this.settings.firstPollAt ?? 0) });
    this.pump();
  }

  /** Resolves once no more requests will be tracked and every tracked one is decided and settled. */
  finish(): Promise<void> {
    this.submissionsDone = true;
    return new Promise((resolve) => {
      this.resolveIdle = resolve;
      this.checkIdle();
    });
  }

  /** Stops polling (deadline passed); what is still undecided stays in `undecided`. */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.resolveIdle?.();
  }

  private checkIdle(): void {
    if (this.submissionsDone && this.pending === 0) this.resolveIdle?.();
  }

  private pump(): void {
    if (this.stopped) return;
    const now = performance.now();
    while (this.inFlight < this.settings.maxInFlight) {
      const next = this.heap.peek();
      if (!next || next.due > now) break;
      this.heap.pop();
      this.stats.pollLag.record(now - next.due);
      this.inFlight++;
      void this.poll(next).finally(() => {
        this.inFlight--;
        this.pump();
      });
    }
    const next = this.heap.peek();
    // With every slot busy, the next completion pumps again; otherwise wake when the next poll is due.
    if (next && this.inFlight < this.settings.maxInFlight && next.due < this.timerDue) {
      clearTimeout(this.timer);
      this.timerDue = next.due;
      this.timer = setTimeout(() => {
        this.timerDue = Infinity;
        this.pump();
      }, Math.max(1, next.due - now));
    }
  }

  private later(item: Tracked, delayMs: number): void {
    item.due = performance.now() + delayMs;
    this.heap.push(item);
  }

  private async poll(item: Tracked): Promise<void> {
    let answer;
    const sentAt = performance.now();
    try {
      answer = await this.http.send('GET', `/booking/${item.id}/status`, undefined, this.pollHeaders);
    } catch (error) {
      this.stats.errors.add(`poll:${networkErrorName(error)}`);
      this.later(item, this.settings.pollMs);
      return;
    }
    this.stats.http.poll.add(String(answer.status));
    const waitMs = Math.max(this.settings.pollMs, answer.retryAfterMs ?? 0);
    if (answer.status !== 200) {
      if (answer.status === 429 || answer.status === 503) this.stats.retried.add(`poll:${answer.status}`);
      else this.stats.errors.add(`poll:http-${answer.status}`);
      this.later(item, waitMs);
      return;
    }
    const body = answer.body as { status: string; reason?: string; position?: number };
    if (body.status === 'QUEUED') {
      if (typeof body.position === 'number') this.stats.latestPollPosition = Math.max(this.stats.latestPollPosition ?? 0, body.position);
      // The API waited already: ask again once --poll-ms has passed since this poll was sent.
      this.later(item, answer.preferenceApplied ? Math.max(0, this.settings.pollMs - (performance.now() - sentAt)) : waitMs);
      return;
    }
    this.undecided.delete(item.id);
    await this.decided(item, body);
  }

  /**
   * A request the API answered with its decision (POST /booking under `Prefer: wait`): counted
   * and settled as a poll's decision would be, with no poll.
   */
  async decidedOnSubmit(id: string, submittedAt: number, body: { status: string; reason?: string }): Promise<void> {
    this.pending++;
    await this.decided({ id, submittedAt, due: 0 }, body);
  }

  /** A decision seen (by a poll or in the submit's answer): its latency, outcome and settle. */
  private async decided(item: Tracked, body: { status: string; reason?: string }): Promise<void> {
    // Lapsed before any poll saw the hold: counting it would add a decision that was not
    // observed, with the hold's whole lifetime as its latency.
    if (body.status === 'EXPIRED') {
      this.stats.lapsedUnseen++;
      this.pending--;
      this.checkIdle();
      return;
    }
    const now = performance.now();
    this.stats.decided++;
    this.stats.lastDecidedAt = now;
    this.stats.decisionLatency.record(now - item.submittedAt);
    this.stats.outcomes.add(body.reason ? `${body.status}:${body.reason}` : body.status);
    if (body.status === 'HELD') await this.settle(item.id);
    this.pending--;
    this.checkIdle();
  }

  /** Confirm, cancel, or leave the hold to lapse, in the proportions asked for. */
  private async settle(id: string): Promise<void> {
    const roll = this.random.next();
    const { confirmRatio, cancelShare } = this.settings;
    if (roll >= confirmRatio && this.random.next() >= cancelShare) {
      this.stats.leftToLapse++;
      return;
    }
    const kind = roll < confirmRatio ? 'confirm' : 'cancel';
    for (let attempt = 0; ; attempt++) {
      let answer;
      try {
        answer = await this.http.send('POST', `/booking/${id}/${kind}`, kind === 'confirm' ? CONFIRM_BODY : '{}');
      } catch (error) {
        this.stats.errors.add(`${kind}:${networkErrorName(error)}`);
        return;
      }
      this.stats.http[kind].add(String(answer.status));
      if ((answer.status === 429 || answer.status === 503) && attempt < this.settings.maxRetries) {
        this.stats.retried.add(`${kind}:${answer.status}`);
        await new Promise((resolve) => setTimeout(resolve, answer.retryAfterMs ?? 1_000));
        continue;
      }
      if (answer.status === 200) {
        if (kind === 'confirm') this.stats.confirmed++;
        else this.stats.cancelled++;
      } else {
        const code = (answer.body as { error?: { code?: string } } | null)?.error?.code ?? `http-${answer.status}`;
        this.stats.settleRejected.add(`${kind}:${code}`);
        if (answer.status >= 500) this.stats.errors.add(`${kind}:http-${answer.status}`);
      }
      return;
    }
  }
}
