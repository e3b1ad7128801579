import { sql } from 'drizzle-orm';
import type { Executor } from '../db/client.js';
import type { DeliveryStatus } from './events.js';
import type { Sender } from './send.js';

/**
 * The relay: from the outbox to the receivers, at least once, in order per booking.
 *
 * The booking path writes only the event (one row per event, record_booking_events); the relay
 * writes its deliveries (one per subscribed webhook) when it picks the event up, off the booking
 * path (`fanOutEvents`). The delivery rows are the truth from then on; the queue only carries
 * work. `claimDueDeliveries` fans out what is new, then finds the deliveries that are due
 * (PENDING, their time come, and no earlier event of the same booking still pending for the same
 * webhook) and leases each for `leaseMs` by moving its next_attempt_at ahead, so no other tick
 * takes it meanwhile; the caller then queues the batch as one job. `attemptDeliveries` sends them
 * and records the outcomes. If the attempt never records (a worker killed mid-request, a Redis
 * that lost the job), the lease runs out and the next tick claims the delivery again: nothing is
 * lost, and a receiver may see an event twice (with the same webhook-id, to deduplicate).
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
 * Writes the deliveries of up to `limit` events not fanned out yet, oldest first: one per webhook
 * that subscribes to the event's type now (a webhook deleted since the event gets none, one
 * registered since it may get it). Returns the number of events fanned out.
 *
 * One fan-out at a time (a transaction-scoped advisory lock; a tick that finds it taken skips
 * fanning out): that keeps order per booking. A booking's later event always has the larger id
 * and commits after the earlier one, so a fan-out that sees the later event sees the earlier
 * one too and, going by id, writes its deliveries first or in the same statement; two fan-outs
 * at once could otherwise commit a later event's delivery before an earlier one's existed, and
 * the claim's chain condition would let it go first. The lock is taken in its own statement so
 * that the fan-out's statement, which comes after, sees what the previous holder committed.
 */
export async function fanOutEvents(db: Executor, limit: number): Promise<number> {
  return db.transaction(async (tx) => {
    const { rows: lock } = await tx.execute<{ taken: boolean }>(sql`SELECT pg_try_advisory_xact_lock(${FAN_OUT_LOCK_KEY}) AS taken`);
    if (!lock[0]?.taken) return 0;
    const { rows } = await tx.execute<{ events: number }>(sql`
      WITH picked AS (
        SELECT id FROM webhook_events WHERE fanned_out_at IS NULL ORDER BY id LIMIT ${limit}
      ), marked AS (
        UPDATE webhook_events e SET fanned_out_at = clock_timestamp()
        FROM picked WHERE e.id = picked.id
        RETURNING e.id, e.type, e.booking_id
      ), fanned AS (
        -- Runs although nothing reads it: a data-modifying WITH always runs to completion.
        INSERT INTO webhook_deliveries (webhook_id, event_id, booking_id)
        SELECT w.id, m.id, m.booking_id FROM marked m JOIN webhooks w ON m.type = ANY(w.events)
        ORDER BY m.id
      )
      SELECT count(*)::int AS events FROM marked`);
    return rows[0]?.events ?? 0;
  });
}

/** The fan-out's advisory lock: one key, in a namespace of its own. */
export const FAN_OUT_LOCK_KEY = sql`hashtextextended('webhook-fan-out', 0)`;

/**
 * Fans out new events (`fanOutEvents`, up to `limit`), then leases up to `limit` due
 * deliveries, soonest due first. SKIP LOCKED lets several workers' ticks run at once without
 * taking the same rows or waiting on each other. The chain condition keeps order per booking:
 * the next event of a booking becomes due only once the one before it is DELIVERED or FAILED
 * (webhook_deliveries_chain_idx).
 */
export async function claimDueDeliveries(db: Executor, limit: number, leaseMs: number): Promise<DueDelivery[]> {
  await fanOutEvents(db, limit);
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
  id: string;
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

type Recorded = {
  id: string;
  attempt: number;
  status: DeliveryStatus;
  status_code: number | null;
  latency_ms: number;
  error: string | null;
  next_attempt_at: string | null;
};

/**
 * One attempt of each of a batch of leased deliveries: loads them in one query, sends them
 * `concurrency` at a time, records every answer in one statement. Each is sent only if `attempt`
 * is still its next one (a batch that runs twice sends nothing twice). A 2xx makes a delivery
 * DELIVERED; anything else schedules a retry, or makes it FAILED once the next retry would
 * fall outside the retry window. The batch holds at most one delivery per booking and webhook
 * (the claim's chain condition), so sending them at once keeps order per booking.
 */
export async function attemptDeliveries(
  db: Executor,
  sender: Sender,
  batch: readonly DueDelivery[],
  policy: RetryPolicy,
  concurrency: number,
): Promise<AttemptOutcome[]> {
  if (batch.length === 0) return [];
  const { rows } = await db.execute<Loaded>(sql`
    SELECT d.id, d.attempts, d.status, d.created_at, w.url, w.secret, e.message_id, e.type, e.data, e.occurred_at
    FROM webhook_deliveries d
    JOIN webhooks w ON w.id = d.webhook_id
    JOIN webhook_events e ON e.id = d.event_id
    WHERE d.id = ANY(${sql.param(batch.map((due) => due.id))}::uuid[])`);
  const loaded = new Map(rows.map((row) => [row.id, row]));
  const live = batch.filter((due) => {
    const delivery = loaded.get(due.id);
    return delivery?.status === 'PENDING' && delivery.attempts + 1 === due.attempt;
  });

  const recorded: Recorded[] = [];
  let next = 0;
  const sendNext = async (): Promise<void> => {
    for (let index = next++; index < live.length; index = next++) {
      const due = live[index]!;
      const delivery = loaded.get(due.id)!;
      const result = await sender.send({
        url: delivery.url,
        secret: delivery.secret,
        messageId: `msg_${delivery.message_id}`,
        type: delivery.type,
        occurredAt: new Date(delivery.occurred_at),
        data: delivery.data,
      });
      const retryAt = Date.now() + retryDelayMs(due.attempt, policy);
      const status: DeliveryStatus = result.ok ? 'DELIVERED' : retryAt > new Date(delivery.created_at).getTime() + policy.windowMs ? 'FAILED' : 'PENDING';
      recorded.push({
        id: due.id,
        attempt: due.attempt,
        status,
        status_code: result.statusCode,
        latency_ms: result.latencyMs,
        error: result.ok ? null : result.error,
        next_attempt_at: status === 'PENDING' ? new Date(retryAt).toISOString() : null,
      });
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, live.length) }, sendNext));

  // Guarded by the attempt number: of two runs of one attempt that raced (a lease that ran out
  // while the first still waited on a slow receiver), only the first to record counts.
  const written = recorded.length === 0 ? { rows: [] as Array<{ id: string }> } : await db.execute<{ id: string }>(sql`
    UPDATE webhook_deliveries d SET
      status = r.status, attempts = r.attempt,
      last_attempt_at = clock_timestamp(), last_status_code = r.status_code, last_latency_ms = r.latency_ms, last_error = r.error,
      delivered_at = CASE WHEN r.status = 'DELIVERED' THEN clock_timestamp() END,
      next_attempt_at = coalesce(r.next_attempt_at, d.next_attempt_at)
    FROM jsonb_to_recordset(${JSON.stringify(recorded)}::jsonb) AS r(
      id uuid, attempt int, status text, status_code int, latency_ms int, error text, next_attempt_at timestamptz)
    WHERE d.id = r.id AND d.attempts = r.attempt - 1 AND d.status = 'PENDING'
    RETURNING d.id`);
  const counted = new Set(written.rows.map((row) => row.id));
  const byId = new Map(recorded.map((entry) => [entry.id, entry]));
  return batch.map((due): AttemptOutcome => {
    const entry = byId.get(due.id);
    if (!entry || !counted.has(due.id)) return { kind: 'stale' };
    const kind = entry.status === 'PENDING' ? 'RETRYING' : entry.status;
    return { kind, statusCode: entry.status_code, latencyMs: entry.latency_ms, error: entry.error };
  });
}
