import type { Job } from 'bullmq';
import type { RedisClient } from '../../shared/redis.js';
import type pg from 'pg';
import { Counter, Histogram, type Registry } from 'prom-client';
import type { ExpiryResult } from '../../shared/booking/expire.js';
import type { Logger } from '../../shared/logger.js';
import { OutcomeTally } from '../../shared/metrics/outcomes.js';
import { createRegistry, observePool, observeRedis } from '../../shared/metrics/resources.js';
import type { AttemptOutcome } from '../../shared/webhooks/relay.js';
import type { BookingObserver } from './jobs/process-bookings.js';

/**
 * One worker process's metrics: how long jobs and claims take, how decisions turn out, how
 * much each batch and sweep does, and the state of its pool and Redis connection. Decision
 * outcomes also go to the shared counters in Redis, which the API's /metrics exposes for the
 * whole pipeline.
 */

export type WorkerMetrics = {
  registry: Registry;
  bookings: BookingObserver;
  onSwept: (released: ExpiryResult) => void;
  onWebhookAttempt: (outcome: AttemptOutcome) => void;
  /** Writes the outcome counts not yet sent to Redis (on shutdown). */
  flush: () => Promise<void>;
  /** Wraps a queue's processor to time every job it runs. */
  timed: (queue: string, processor: (job: Job) => Promise<unknown>) => (job: Job) => Promise<unknown>;
};

export function createWorkerMetrics(deps: { pool: pg.Pool; redis: RedisClient; prefix: string; logger: Logger }): WorkerMetrics {
  const registry = createRegistry();
  const registers = [registry];
  const tally = new OutcomeTally(deps.redis, deps.prefix, (error) =>
    deps.logger.debug({ err: error instanceof Error ? error.message : error }, 'metrics: outcomes not counted'),
  );
  observePool(registry, deps.pool);
  observeRedis(registry, deps.redis);

  const jobDuration = new Histogram({
    name: 'ticket_rush_job_duration_seconds',
    help: 'Time a worker spent on a job, by queue, job name and result (completed or failed)',
    labelNames: ['queue', 'job', 'result'],
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers,
  });
  const decisionLatency = new Histogram({
    name: 'ticket_rush_booking_decision_latency_seconds',
    help: 'Time from the API accepting a booking to its decision in Postgres (decided_at - accepted_at), by status',
    labelNames: ['status'],
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300],
    registers,
  });
  const decided = new Counter({
    name: 'ticket_rush_worker_bookings_total',
    help: 'Bookings this worker process decided, by status and failure reason',
    labelNames: ['status', 'reason'],
    registers,
  });
  const lockWait = new Histogram({
    name: 'ticket_rush_seat_claim_lock_wait_seconds',
    help: 'Time a claim transaction spent in its blocking lock statements (per-customer advisory locks, specific seats)',
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers,
  });
  const transaction = new Histogram({
    name: 'ticket_rush_seat_claim_transaction_seconds',
    help: 'Duration of claim transactions, by outcome (committed or rolled_back)',
    labelNames: ['outcome'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers,
  });
  const batchSize = new Histogram({
    name: 'ticket_rush_booking_batch_size',
    help: 'Booking requests decided together in one claim transaction',
    buckets: [1, 2, 5, 10, 25, 50, 100, 200, 500, 1000],
    registers,
  });
  const sweptHolds = new Histogram({
    name: 'ticket_rush_expiry_sweep_released_holds',
    help: 'Lapsed holds (bookings) released per expiry sweep',
    buckets: [0, 1, 10, 100, 1_000, 10_000, 100_000],
    registers,
  });
  const sweptSeats = new Counter({
    name: 'ticket_rush_expiry_released_seats_total',
    help: 'Seats made available again by expiry sweeps',
    registers,
  });

  const webhookAttempts = new Counter({
    name: 'ticket_rush_webhook_attempts_total',
    help: 'Webhook delivery attempts by outcome: DELIVERED (2xx), RETRYING (will be tried again), FAILED (retries ran out), stale (nothing sent)',
    labelNames: ['outcome'],
    registers,
  });
  const webhookLatency = new Histogram({
    name: 'ticket_rush_webhook_attempt_seconds',
    help: 'Time a webhook receiver took to answer an attempt (or to fail it)',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers,
  });

  // A child per status, looked up once: observe() on the parent hashes its labels every call.
  const latencies = new Map<string, { observe: (value: number) => void }>();
  const latencyOf = (status: string) => {
    let child = latencies.get(status);
    if (!child) latencies.set(status, (child = decisionLatency.labels({ status })));
    return child;
  };

  return {
    registry,
    onWebhookAttempt: (outcome) => {
      webhookAttempts.inc({ outcome: outcome.kind });
      if (outcome.kind !== 'stale') webhookLatency.observe(outcome.latencyMs / 1_000);
    },
    bookings: {
      batch: (size) => batchSize.observe(size),
      lockWait: (seconds) => lockWait.observe(seconds),
      transaction: (seconds, outcome) => transaction.observe({ outcome }, seconds),
      decided: (batch) => {
        const outcomes = new Map<string, { status: string; reason: string | null; count: number }>();
        for (const [request, booking] of batch) {
          const key = `${booking.status}|${booking.reason ?? ''}`;
          const outcome = outcomes.get(key);
          if (outcome) outcome.count++;
          else outcomes.set(key, { status: booking.status, reason: booking.reason, count: 1 });
          const latency = (booking.decidedAt.getTime() - Date.parse(request.accepted_at)) / 1_000;
          // The two timestamps come from different clocks (API host, Postgres); skew must not go negative.
          latencyOf(booking.status).observe(Math.max(0, latency));
        }
        for (const { status, reason, count } of outcomes.values()) {
          decided.inc({ status, reason: reason ?? 'none' }, count);
          tally.add(status, reason, count);
        }
      },
    },
    flush: () => tally.flush(),
    onSwept: (released) => {
      sweptHolds.observe(released.bookings);
      sweptSeats.inc(released.seats);
    },
    timed: (queue, processor) => async (job) => {
      const end = jobDuration.startTimer({ queue, job: job.name });
      try {
        const result = await processor(job);
        end({ result: 'completed' });
        return result;
      } catch (error) {
        end({ result: 'failed' });
        throw error;
      }
    },
  };
}
