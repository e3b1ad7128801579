import type { Redis } from 'ioredis';

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

/** Adds `count` to an outcome (a decision: HELD, FAILED with its reason; a sweep: EXPIRED). */
export async function recordOutcome(redis: Redis, prefix: string, status: string, reason: string | null, count = 1): Promise<void> {
  if (count <= 0) return;
  await redis.hincrby(outcomesKey(prefix), `${status}${SEPARATOR}${reason ?? ''}`, count);
}

export async function readOutcomes(redis: Redis, prefix: string): Promise<OutcomeCount[]> {
  const fields = await redis.hgetall(outcomesKey(prefix));
  return Object.entries(fields).map(([field, value]) => {
    const [status = '', reason = ''] = field.split(SEPARATOR);
    return { status, reason, count: Number(value) };
  });
}
