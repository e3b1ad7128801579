import type { RedisClient } from '../redis.js';

/**
 * Pipeline-wide booking outcome counts, kept in one Redis hash. Each worker process counts
 * what it decides, but Prometheus would need to find and scrape every worker to see the whole
 * sale; with the counts in Redis the API's /metrics shows them from one scrape target, however
 * many workers come and go. The key shares the queue prefix, so on Redis Cluster it lands in
 * the queue's hash slot.
 */

export type OutcomeCount = { status: string; reason: string; count: number };

const SEPARATOR = '|';

export const outcomesKey = (prefix: string) => `${prefix}:stats:outcomes`;

export async function readOutcomes(redis: RedisClient, prefix: string): Promise<OutcomeCount[]> {
  const fields = await redis.hgetall(outcomesKey(prefix));
  return Object.entries(fields).map(([field, value]) => {
    const [status = '', reason = ''] = field.split(SEPARATOR);
    return { status, reason, count: Number(value) };
  });
}

/**
 * Sums outcomes in memory and writes them in one pipeline every `flushMs`: one Redis round
 * trip per interval instead of one per booking, which under a burst matters (a worker decides
 * thousands a second). `flush()` on shutdown writes what is left.
 */
export class OutcomeTally {
  private readonly pending = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
    private readonly onError: (error: unknown) => void,
    private readonly flushMs = 250,
  ) {}

  add(status: string, reason: string | null, count = 1): void {
    if (count <= 0) return;
    const field = `${status}${SEPARATOR}${reason ?? ''}`;
    this.pending.set(field, (this.pending.get(field) ?? 0) + count);
    this.timer ??= setTimeout(() => void this.flush(), this.flushMs).unref();
  }

  async flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.pending.size === 0) return;
    const entries = [...this.pending];
    this.pending.clear();
    const pipeline = this.redis.pipeline();
    for (const [field, count] of entries) pipeline.hincrby(outcomesKey(this.prefix), field, count);
    try {
      const results = (await pipeline.exec()) ?? [];
      const failed = results.find(([error]) => error);
      if (failed) throw failed[0];
    } catch (error) {
      // Counting must never hold up or fail a booking: a lost tick of counts is only logged.
      this.onError(error);
    }
  }
}
