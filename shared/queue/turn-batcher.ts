/**
 * Gathers the items added during one turn of the event loop and sends them together: at the
 * end of the turn (setImmediate runs after its I/O callbacks, so every request parsed in it
 * has joined), or at once when `maxSize` is reached. Under light load a batch is one item and
 * waits for nothing. Each caller gets its own item's result, or the batch's error.
 *
 * With `lingerMs` above 0 a batch stays open that long after its first item instead of one
 * turn (still sent at once when full): at a moderate rate, where a turn holds one request,
 * batches grow by rate × linger, and each costs the queue the same whatever its size.
 */

type Batch<Item, Result> = {
  items: Item[];
  waiters: Array<{ resolve: (result: Result) => void; reject: (error: unknown) => void }>;
};

export class TurnBatcher<Item, Result> {
  private pending: Batch<Item, Result> | null = null;

  constructor(
    /** Sends a batch; returns one result per item, in order. */
    private readonly send: (items: Item[]) => Promise<Result[]>,
    private readonly maxSize: number,
    private readonly lingerMs = 0,
  ) {}

  add(item: Item): Promise<Result> {
    return new Promise<Result>((resolve, reject) => {
      if (!this.pending) {
        const batch: Batch<Item, Result> = { items: [], waiters: [] };
        this.pending = batch;
        if (this.lingerMs > 0) setTimeout(() => this.flush(batch), this.lingerMs);
        else setImmediate(() => this.flush(batch));
      }
      const batch = this.pending;
      batch.items.push(item);
      batch.waiters.push({ resolve, reject });
      if (batch.items.length >= this.maxSize) this.flush(batch);
    });
  }

  /** Sends a batch once: when it is full or at the end of its turn, whichever comes first. */
  private flush(batch: Batch<Item, Result>): void {
    if (this.pending !== batch) return;
    this.pending = null;
    void this.send(batch.items).then(
      (results) => batch.waiters.forEach((waiter, index) => waiter.resolve(results[index]!)),
      (error: unknown) => batch.waiters.forEach((waiter) => waiter.reject(error)),
    );
  }
}
