import { z } from 'zod';
import type { JobsOptions } from 'bullmq';

/**
 * The job catalog: every job name with its payload schema and options. The API (producer) and
 * the worker both import it; the worker re-validates payloads and refuses to boot when a job
 * has no handler.
 */

export const QUEUES = {
  bookings: 'bookings',
  maintenance: 'maintenance',
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
});
export type BookingJob = z.infer<typeof BookingJobSchema>;

export const ExpireHoldsJobSchema = z.object({}).passthrough();

/** What a finished booking job returns; kept on the job so polls of final failures skip Postgres. */
export const BookingResultSchema = z.object({
  status: z.enum(['HELD', 'FAILED']),
  reason: z.string().nullable(),
  seats: z.array(z.string()),
  hold_expires_at: z.string().nullable(),
  decided_at: z.string(),
});
export type BookingResult = z.infer<typeof BookingResultSchema>;

export const JOBS = {
  'process-booking': {
    queue: QUEUES.bookings,
    schema: BookingJobSchema,
    options: {
      // Transient failures (Postgres down, deadlocks) retry with capped backoff for about a
      // quarter of an hour: an outage must not turn accepted requests into failures.
      attempts: 100,
      backoff: { type: 'capped-exponential' },
      // Completed jobs are only needed while clients poll; the decision itself lives in Postgres.
      removeOnComplete: { age: 3_600, count: 200_000 },
      // Jobs that exhausted their attempts stay for an operator to inspect and retry.
      removeOnFail: { age: 7 * 24 * 3_600 },
    } satisfies JobsOptions,
  },
  'expire-holds': {
    queue: QUEUES.maintenance,
    schema: ExpireHoldsJobSchema,
    options: {
      attempts: 1,
      removeOnComplete: { count: 100 },
      removeOnFail: { count: 100 },
    } satisfies JobsOptions,
  },
} as const;

export type JobName = keyof typeof JOBS;

/** Backoff for 'capped-exponential': 250 ms doubling to 10 s, with jitter so retries spread out. */
export function cappedExponentialBackoff(attemptsMade: number): number {
  const base = Math.min(10_000, 250 * 2 ** Math.max(0, attemptsMade - 1));
  return Math.round(base / 2 + Math.random() * (base / 2));
}
