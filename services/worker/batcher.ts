/**
 * Group commit for booking decisions. Requests for the same show that arrive while that show's
 * transaction is running wait and go together into the next one, so under a burst one
 * transaction decides many requests, and under light load a request is decided alone at once
 * (no timer, no added latency). Different shows run in parallel.
 *
 * With `minIntervalMs` (WORKER_BATCH_INTERVAL_MS), a show's next transaction also starts no
 * sooner than that long after its previous one started, unless it is full. A transaction that
 * takes a millisecond would otherwise decide what arrived in that millisecond: under a steady
 * stream each transaction then costs its fixed part (planning, round trips, the commit) for a
 * handful of requests. Only requests waiting behind a transaction are paced: one arriving when
 * the show has none running and none waiting starts at once.
 */

type Pending<Request, Result> = {
  request: Request;
  resolve: (result: Result) => void;
  reject: (error: unknown) => void;
};

export type DecideBatch<Request, Result> = (key: string, requests: Request[]) => Promise<Map<string, Result>>;

export class KeyedBatcher<Request extends { id: string }, Result> {
  private readonly waiting = new Map<string, Pending<Request, Result>[]>();
  /**
   * Keys with a batch in flight. One per key keeps first come, first served within a process:
   * a second concurrent batch of the same show could take seats before an earlier one. (Two in
   * flight measured only ~5% faster on a hot show; bench/RESULTS.md.)
   */
  private readonly running = new Set<string>();
  /** When each show's last transaction started, while requests for it keep coming. */
  private readonly lastStart = new Map<string, number>();
  /** Shows whose next transaction waits out `minIntervalMs`: the timer that starts it. */
  private readonly paced = new Map<string, NodeJS.Timeout>();

  /**
   * `maxBatchSize` may depend on the key: a show found sold out takes larger batches
   * (services/worker/jobs/process-bookings.ts).
   */
  constructor(
    private readonly decide: DecideBatch<Request, Result>,
    private readonly maxBatchSize: number | ((key: string) => number),
    private readonly minIntervalMs = 0,
  ) {}

  private batchSizeOf(key: string): number {
    return typeof this.maxBatchSize === 'number' ? this.maxBatchSize : this.maxBatchSize(key);
  }

  submit(key: string, request: Request): Promise<Result> {
    return new Promise<Result>((resolve, reject) => {
      const queue = this.waiting.get(key) ?? [];
      queue.push({ request, resolve, reject });
      this.waiting.set(key, queue);
      this.pump(key);
    });
  }

  /** Requests waiting or running: what a graceful shutdown waits for. */
  get size(): number {
    let total = this.running.size;
    for (const queue of this.waiting.values()) total += queue.length;
    return total;
  }

  private pump(key: string): void {
    if (this.running.has(key)) return;
    const queue = this.waiting.get(key);
    if (!queue || queue.length === 0) {
      this.waiting.delete(key);
      this.lastStart.delete(key);
      return;
    }
    const maxBatchSize = this.batchSizeOf(key);
    const full = queue.length >= maxBatchSize;
    const timer = this.paced.get(key);
    if (timer && !full) return;
    clearTimeout(timer);
    this.paced.delete(key);
    const now = performance.now();
    const since = now - (this.lastStart.get(key) ?? -Infinity);
    if (since < this.minIntervalMs && !full) {
      this.paced.set(
        key,
        setTimeout(() => {
          this.paced.delete(key);
          this.pump(key);
        }, this.minIntervalMs - since),
      );
      return;
    }
    this.lastStart.set(key, now);
    // The same request id twice in one batch (a duplicate delivery to this process) would
    // collide with itself; the extra copy waits for the next batch, which sees it decided.
    // One pass, the rest kept in order (splicing each taken entry out was quadratic in a deep queue).
    const batch: Pending<Request, Result>[] = [];
    const rest: Pending<Request, Result>[] = [];
    const ids = new Set<string>();
    for (const entry of queue) {
      if (batch.length < maxBatchSize && !ids.has(entry.request.id)) {
        ids.add(entry.request.id);
        batch.push(entry);
      } else {
        rest.push(entry);
      }
    }
    this.waiting.set(key, rest);
    this.running.add(key);
    this.decide(
      key,
      batch.map((entry) => entry.request),
    )
      .then(
        (results) => {
          for (const entry of batch) {
            const result = results.get(entry.request.id);
            if (result === undefined) entry.reject(new Error(`no decision for ${entry.request.id}`));
            else entry.resolve(result);
          }
        },
        (error: unknown) => {
          for (const entry of batch) entry.reject(error);
        },
      )
      .finally(() => {
        this.running.delete(key);
        this.pump(key);
      });
  }
}
