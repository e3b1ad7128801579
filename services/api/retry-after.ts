/**
 * How long a queued client should wait before polling again. A fixed second made every
 * waiting client poll every second however far back it stood, so a hundred thousand waiting
 * buyers sent a hundred thousand polls a second, and ten buyers behind one NAT ran out of
 * their shared per-IP budget. Instead: the expected wait (place in line ÷ the rate workers
 * drain the line) halved, so a client polls a few times on its way to the front, more often
 * as it nears it.
 *
 * The drain rate is measured, not configured: the line's `taken` counter (requests workers
 * have started, shared/queue/request-index.ts) sampled about once a second over the last
 * few seconds. Sampling happens in the background; a Retry-After is computed from the last
 * estimate without a round trip to Redis.
 *
 * A poll's estimated_wait_seconds prefers its show's own decision rate (ShowDrainRates): the
 * queue is shared by every show, and a show's requests leave it at that show's pace.
 */

export const MIN_RETRY_AFTER_SECONDS = 1;
export const MAX_RETRY_AFTER_SECONDS = 30;

const SAMPLE_EVERY_MS = 1_000;
/** Samples older than this leave the estimate: it follows a burst starting or workers stopping within seconds. */
const WINDOW_MS = 10_000;

/** Before a rate is known (or while nothing drains): longer the further back in line. */
const fallback = (position: number) => Math.min(5, 1 + Math.floor(position / 5_000));

export class RetryAfterAdvisor {
  private samples: Array<{ at: number; taken: number }> = [];
  private sampling: Promise<void> | null = null;

  constructor(
    private readonly readTaken: () => Promise<number>,
    private readonly now: () => number = Date.now,
  ) {}

  /** Requests per second workers have been taking from the line lately; null until two samples span some time. */
  drainRate(): number | null {
    const first = this.samples[0];
    const last = this.samples.at(-1);
    if (!first || !last || last.at - first.at < SAMPLE_EVERY_MS / 2) return null;
    return Math.max(0, (last.taken - first.taken) / ((last.at - first.at) / 1_000));
  }

  /** Seconds until the client at `position` should poll again. */
  secondsFor(position: number): number {
    this.sampleIfDue();
    const rate = this.drainRate();
    if (!rate) return fallback(position);
    const seconds = Math.ceil(position / rate / 2);
    return Math.min(MAX_RETRY_AFTER_SECONDS, Math.max(MIN_RETRY_AFTER_SECONDS, seconds));
  }

  /**
   * The expected wait of the request at `position` (place in line ÷ the measured drain rate of
   * the queue, which all shows share), in whole seconds; null while no rate is known or nothing drains.
   */
  expectedWaitSeconds(position: number): number | null {
    this.sampleIfDue();
    const rate = this.drainRate();
    return rate ? Math.ceil(position / rate) : null;
  }

  /**
   * In a waiting room: nothing moves before the sale opens, so poll again about then (the draw
   * follows within a second), at most MAX_RETRY_AFTER_SECONDS ahead.
   */
  secondsUntil(at: number): number {
    const seconds = Math.ceil((at - this.now()) / 1_000);
    return Math.min(MAX_RETRY_AFTER_SECONDS, Math.max(MIN_RETRY_AFTER_SECONDS, seconds));
  }

  private sampleIfDue(): void {
    const last = this.samples.at(-1);
    if (this.sampling || (last && this.now() - last.at < SAMPLE_EVERY_MS)) return;
    this.sampling = this.readTaken()
      .then((taken) => {
        const at = this.now();
        this.samples = [...this.samples.filter((sample) => at - sample.at <= WINDOW_MS), { at, taken }];
      })
      // Redis unavailable: keep the last estimate (or the fallback); the request itself reports the outage.
      .catch(() => {})
      .finally(() => {
        this.sampling = null;
      });
  }

  /** Waits for a sample in progress (tests). */
  async settled(): Promise<void> {
    await this.sampling;
  }
}

/** A show's advisor is dropped once no poll has asked about the show for this long. */
const SHOW_IDLE_MS = 60_000;

/**
 * The decision rate of each show polled lately, measured like the queue's (a RetryAfterAdvisor
 * per show over the show's own taken counter, `flow_out` in shared/queue/show-line.ts), so
 * only shows someone polls are sampled: one HGET a second per show and API process.
 */
export class ShowDrainRates {
  private readonly shows = new Map<string, { advisor: RetryAfterAdvisor; askedAt: number }>();
  private sweptAt: number;

  constructor(
    private readonly readTaken: (showId: string) => Promise<number>,
    private readonly now: () => number = Date.now,
  ) {
    this.sweptAt = now();
  }

  /**
   * Seconds until a request with `requestsAhead` of its show ahead of it is decided, from the
   * show's measured rate; null while none is measured (just asked, or nothing of it drains).
   */
  expectedWaitSeconds(showId: string, requestsAhead: number): number | null {
    const now = this.now();
    this.sweepIdle(now);
    let show = this.shows.get(showId);
    if (!show) {
      show = { advisor: new RetryAfterAdvisor(() => this.readTaken(showId), this.now), askedAt: now };
      this.shows.set(showId, show);
    }
    show.askedAt = now;
    return show.advisor.expectedWaitSeconds(requestsAhead + 1);
  }

  /** Waits for the samples in progress (tests). */
  async settled(): Promise<void> {
    await Promise.all([...this.shows.values()].map((show) => show.advisor.settled()));
  }

  private sweepIdle(now: number): void {
    if (now - this.sweptAt < SHOW_IDLE_MS) return;
    this.sweptAt = now;
    for (const [showId, show] of this.shows) if (now - show.askedAt > SHOW_IDLE_MS) this.shows.delete(showId);
  }
}
