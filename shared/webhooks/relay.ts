import { sql } from 'drizzle-orm';
import type { Executor } from '../db/client.js';
import type { DeliveryStatus } from './events.js';
import type { Sender } from './send.js';

/**
 * The relay: from the outbox to the receivers, at least once, in order per booking.
 *
 * The delivery rows are the truth; the queue only carries work. `claimDueDeliveries` finds the
 * deliveries that are due (PENDING, their time come, and no earlier event of the same booking
 * still pending for the same webhook) and leases each for `leaseMs` by moving its
 * next_attempt_at ahead, so no other tick takes it meanwhile; the caller then queues one
 * attempt per delivery. `attemptDelivery` sends it and records the outcome. If the attempt never
 * records (a worker killed mid-request, a Redis that lost the job), the lease runs out and the
 * next tick claims the delivery again: nothing is lost, and a receiver may see an event twice
 * (with the same webhook-id, to deduplicate).
 */

export type RetryPolicy = {
  /** First retry after about this long, doubling per attempt... */
  baseMs: number;
  /** ...up to this. */
  maxMs: number;
  /** Retries stop this long after the event: the delivery is FAILED. */
  windowMs: number;
};

export type DueDelivery = { id: string; attempt: number };

/**
 * Leases up to `limit` due deliveries, soonest due first. SKIP LOCKED lets several workers'
 * ticks run at once without taking the same rows or waiting on each other. The chain condition
 * keeps order per booking: the next event of a booking becomes due only once the one before it
 * is DELIVERED or FAILED (webhook_deliveries_chain_idx).
 */
export async function claimDueDeliveries(db: Executor, limit: number, leaseMs: number): Promise<DueDelivery[]> {
  const { rows } = await db.execute<{ id: string; attempts: number }>(sql`
    WITH due AS (
      SELECT d.id FROM webhook_deliveries d
      WHERE d.status = 'PENDING' AND d.next_attempt_at <= clock_timestamp()
        AND NOT EXISTS (
          SELECT 1 FROM webhook_deliveries earlier
          WHERE earlier.webhook_id = d.webhook_id AND earlier.booking_id = d.booking_id
            AND earlier.status = 'PENDING' AND earlier.event_id < d.event_id)
      ORDER BY d.next_attempt_at
      LIMIT ${limit}
      FOR UPDATE SKIP LOCKED
    )
    UPDATE webhook_deliveries d SET next_attempt_at = clock_timestamp() + make_interval(secs => ${leaseMs / 1_000})
    FROM due WHERE d.id = due.id
    RETURNING d.id, d.attempts`);
  return rows.map((row) => ({ id: row.id, attempt: row.attempts + 1 }));
}

/** Exponential backoff with jitter: about base × 2^(n-1), capped, drawn from its upper half. */
export function retryDelayMs(attempt: number, policy: Pick<RetryPolicy, 'baseMs' | 'maxMs'>): number {
  const ceiling = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
}

export type AttemptOutcome =
  /** Nothing sent: the delivery is gone (its webhook deleted), settled, or another attempt ran. */
  | { kind: 'stale' }
  | { kind: DeliveryStatus | 'RETRYING'; statusCode: number | null; latencyMs: number; error: string | null };

type Loaded = {
  attempts: number;
  status: DeliveryStatus;
  created_at: Date;
  url: string;
  secret: string;
  message_id: string;
  type: string;
  data: unknown;
  occurred_at: Date;
};

/**
 * One attempt of one delivery: sends it (unless it is stale: `attempt` must be the next one) and
 * records the answer. A 2xx makes it DELIVERED; anything else schedules a retry, or makes it
 * FAILED once the next retry would fall outside the retry window.
 */
export async function attemptDelivery(db: Executor, sender: Sender, due: DueDelivery, policy: RetryPolicy): Promise<AttemptOutcome> {
  const { rows } = await db.execute<Loaded>(sql`
    SELECT d.attempts, d.status, d.created_at, w.url, w.secret, e.message_id, e.type, e.data, e.occurred_at
    FROM webhook_deliveries d
    JOIN webhooks w ON w.id = d.webhook_id
    JOIN webhook_events e ON e.id = d.event_id
    WHERE d.id = ${due.id}`);
  const delivery = rows[0];
  if (!delivery || delivery.status !== 'PENDING' || delivery.attempts + 1 !== due.attempt) return { kind: 'stale' };

  const result = await sender.send({
    url: delivery.url,
    secret: delivery.secret,
    messageId: `msg_${delivery.message_id}`,
    type: delivery.type,
    occurredAt: new Date(delivery.occurred_at),
    data: delivery.data,
  });
  const error = result.ok ? null : result.error;
  const retryAt = Date.now() + retryDelayMs(due.attempt, policy);
  const kind = result.ok ? 'DELIVERED' : retryAt > new Date(delivery.created_at).getTime() + policy.windowMs ? 'FAILED' : 'RETRYING';
  const status: DeliveryStatus = kind === 'RETRYING' ? 'PENDING' : kind;
  // Guarded by the attempt number: of two attempts that raced (a lease that ran out while the
  // first was still waiting on a slow receiver), only the first to record counts.
  const recorded = await db.execute(sql`
    UPDATE webhook_deliveries SET
      status = ${status}, attempts = ${due.attempt},
      last_attempt_at = clock_timestamp(), last_status_code = ${result.statusCode}, last_latency_ms = ${result.latencyMs},
      last_error = ${error},
      delivered_at = CASE WHEN ${status} = 'DELIVERED' THEN clock_timestamp() END,
      next_attempt_at = CASE WHEN ${status} = 'PENDING' THEN ${new Date(retryAt).toISOString()}::timestamptz ELSE next_attempt_at END
    WHERE id = ${due.id} AND attempts = ${due.attempt - 1} AND status = 'PENDING'`);
  if (recorded.rowCount === 0) return { kind: 'stale' };
  return { kind, statusCode: result.statusCode, latencyMs: result.latencyMs, error };
}
