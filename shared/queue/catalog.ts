import { z } from 'zod';
import type { JobsOptions } from 'bullmq';
import { FAILURE_REASONS } from '../booking/statuses.js';

/**
 * The job catalog: every job name with its payload schema and options. The API (producer) and
 * the worker both import it; the worker's dispatcher validates each payload against it (a
 * payload that does not match fails without retrying) and refuses to boot when a job has no handler.
 */

export const QUEUES = {
  bookings: 'bookings',
  maintenance: 'maintenance',
  webhooks: 'webhooks',
} as const;

export const BookingJobSchema = z.object({
  id: z.uuid(),
  show_id: z.uuid(),
  customer_email: z.string().min(3).max(254),
  seat_count: z.number().int().min(1).max(1000),
  section: z.string().nullable(),
  seats: z.array(z.string()).nullable(),
  accepted_at: z.iso.datetime(),
  idempotency_key: z.string().nullable(),
  request_id: z.string().max(128),
  // Join the show's waiting list instead of failing SOLD_OUT (best available only). Absent in
  // jobs queued before the waiting list existed.
  waitlist: z.boolean().optional(),
});
export type BookingJob = z.infer<typeof BookingJobSchema>;

/**
 * Booking requests travel in batches: the API puts the requests it accepts in one turn of its
 * event loop into one job (ENQUEUE_BATCH_SIZE at most), because BullMQ's cost per job (a script
 * to add it, two to take and finish it) dominated the cost per booking when each request was
 * its own job. `shared/queue/request-index.ts` finds a request's job by booking id.
 */
export const BookingBatchSchema = z.object({
  requests: z.array(BookingJobSchema).min(1).max(1_000),
  /**
   * Sent in its admission's round trip, before the admission said where each request goes: only
   * the requests whose index entry names this job are its own (RequestIndex.admitWithJob).
   */
  sentWithAdmission: z.literal(true).optional(),
});
export type BookingBatch = z.infer<typeof BookingBatchSchema>;

export const ExpireHoldsJobSchema = z.object({}).passthrough();
export const ReconcileIntakeJobSchema = z.object({}).passthrough();
export const RelayWebhooksJobSchema = z.object({}).passthrough();
export const PruneWebhooksJobSchema = z.object({}).passthrough();

/**
 * One attempt of each of a batch of webhook deliveries (shared/webhooks/relay.ts), as one relay
 * tick leased them. The delivery rows in Postgres are the truth: a job that is lost is leased
 * again from them, a job that runs twice sends nothing twice (the attempt number guards each row).
 */
export const DeliverWebhooksJobSchema = z.object({
  deliveries: z.array(z.object({ delivery_id: z.uuid(), attempt: z.number().int().min(1) })).min(1).max(10_000),
});
export type DeliverWebhooksJob = z.infer<typeof DeliverWebhooksJobSchema>;

const recordedDecision = {
  seats: z.array(z.string()),
  hold_expires_at: z.string().nullable(),
  decided_at: z.string(),
};

/**
 * A request's decision as the worker records it in Redis, so polls of final failures skip
 * Postgres. A FAILED one always names its reason; a HELD one is checked against its hold's
 * expiry, then Postgres answers; a WAITLISTED one always reads Postgres.
 */
export const BookingResultSchema = z.discriminatedUnion('status', [
  z.object({ status: z.literal('HELD'), reason: z.null(), ...recordedDecision }),
  z.object({ status: z.literal('FAILED'), reason: z.enum(FAILURE_REASONS), ...recordedDecision }),
  // On the waiting list: its position moves, so polls ask Postgres.
  z.object({ status: z.literal('WAITLISTED'), reason: z.null(), ...recordedDecision }),
]);
export type BookingResult = z.infer<typeof BookingResultSchema>;

/** What a finished batch job returns: counts only (each request's result is in the request index). */
export type BatchSummary = { decided: number; held: number; failed: number };

/**
 * Scheduled maintenance runs again at its next tick, so a failed run is not retried; the last
 * hundred runs are kept for the board.
 */
const SCHEDULED_JOB_OPTIONS = {
  attempts: 1,
  removeOnComplete: { count: 100 },
  removeOnFail: { count: 100 },
} as const satisfies JobsOptions;

export const JOBS = {
  'process-bookings': {
    queue: QUEUES.bookings,
    schema: BookingBatchSchema,
    options: {
      // Transient failures (Postgres down, deadlocks) retry with capped backoff for about a
      // quarter of an hour: an outage must not turn accepted requests into failures.
      attempts: 100,
      backoff: { type: 'capped-exponential' },
      // Each request's result is kept in the request index; the finished job is kept an hour
      // for operators (Bull Board), the decision itself lives in Postgres.
      removeOnComplete: { age: 3_600, count: 20_000 },
      // Jobs that exhausted their attempts stay for an operator to inspect and retry.
      removeOnFail: { age: 7 * 24 * 3_600 },
    } satisfies JobsOptions,
  },
  'expire-holds': {
    queue: QUEUES.maintenance,
    schema: ExpireHoldsJobSchema,
    options: SCHEDULED_JOB_OPTIONS,
  },
  'reconcile-intake': {
    queue: QUEUES.maintenance,
    schema: ReconcileIntakeJobSchema,
    options: SCHEDULED_JOB_OPTIONS,
  },
  // The relay's tick: leases the deliveries that are due and queues them as one batch.
  'relay-webhooks': {
    queue: QUEUES.maintenance,
    schema: RelayWebhooksJobSchema,
    options: SCHEDULED_JOB_OPTIONS,
  },
  // Retention: settled outbox events older than WEBHOOK_RETENTION_HOURS are deleted.
  'prune-webhooks': {
    queue: QUEUES.maintenance,
    schema: PruneWebhooksJobSchema,
    options: SCHEDULED_JOB_OPTIONS,
  },
  'deliver-webhooks': {
    queue: QUEUES.webhooks,
    schema: DeliverWebhooksJobSchema,
    options: {
      // Retries of the receiver's failures are the delivery row's (backoff for 24 h); these
      // only cover the worker's own trouble (Postgres down while recording), and the lease
      // covers the rest.
      attempts: 3,
      backoff: { type: 'capped-exponential' },
      removeOnComplete: { count: 1_000 },
      removeOnFail: { age: 24 * 3_600 },
    } satisfies JobsOptions,
  },
} as const;

export type JobName = keyof typeof JOBS;

/** Backoff for 'capped-exponential': 250 ms doubling to 10 s, with jitter so retries spread out. */
export function cappedExponentialBackoff(attemptsMade: number): number {
  const base = Math.min(10_000, 250 * 2 ** Math.max(0, attemptsMade - 1));
  return Math.round(base / 2 + Math.random() * (base / 2));
}
