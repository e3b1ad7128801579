import type { Queue } from 'bullmq';
import type { Database } from '../../../shared/db/client.js';
import { readOutcomes } from '../../../shared/metrics/outcomes.js';
import { JOBS } from '../../../shared/queue/catalog.js';
import { UNDECIDED_JOB_STATES } from '../../../shared/queue/pending.js';
import type { RedisClient } from '../../../shared/redis.js';
import { claimDueDeliveries } from '../../../shared/webhooks/relay.js';

/**
 * The relay's scheduled tick: leases the webhook deliveries that are due (at most `batch`, or
 * `busyBatch` while booking requests are being decided) and queues them as one deliver-webhooks job. One job per tick, not per delivery, keeps the relay's
 * cost in Redis and Postgres a few statements per tick however many events a burst writes;
 * Sending costs the worker's event loop and the machine's cores what deciding needs: measured,
 * a relay sending at full rate during a burst took a third to a half of the decisions/s
 * (bench/RESULTS.md). So while the bookings queue has work, a tick takes only `busyBatch`:
 * deliveries trickle during a burst and catch up after it, instead of slowing it. If the job is lost (Redis restarted without it) the leases
 * run out and a later tick queues the deliveries again; a worker killed mid-batch leaves the
 * job stalled, and BullMQ runs it again.
 */
/**
 * "Is a sale on?" for the relay: booking jobs undecided in the queue, or decisions counted (by
 * any worker, in the shared outcome counters) since the last look. The second matters when the
 * API, not the worker, is what a burst saturates: the queue then drains as fast as it fills, yet
 * every core is busy accepting.
 */
export function saleActivityProbe(bookingQueue: Queue, redis: RedisClient, prefix: string): () => Promise<boolean> {
  let lastDecided: number | null = null;
  return async () => {
    const [counts, outcomes] = await Promise.all([bookingQueue.getJobCounts(...UNDECIDED_JOB_STATES), readOutcomes(redis, prefix)]);
    const decided = outcomes.reduce((sum, outcome) => sum + outcome.count, 0);
    const deciding = lastDecided !== null && decided > lastDecided;
    lastDecided = decided;
    return deciding || Object.values(counts).some((count) => count > 0);
  };
}

export function createRelayWebhooksProcessor(deps: {
  db: Database;
  queue: Queue;
  batch: number;
  busyBatch: number;
  /** True while booking requests wait for or are in a decision. */
  bookingsBusy: () => Promise<boolean>;
  leaseMs: number;
}) {
  return async function relayWebhooks(): Promise<{ queued: number }> {
    const limit = (await deps.bookingsBusy()) ? deps.busyBatch : deps.batch;
    if (limit === 0) return { queued: 0 };
    const due = await claimDueDeliveries(deps.db, limit, deps.leaseMs);
    if (due.length === 0) return { queued: 0 };
    const deliveries = due.map((delivery) => ({ delivery_id: delivery.id, attempt: delivery.attempt }));
    await deps.queue.add('deliver-webhooks', { deliveries }, JOBS['deliver-webhooks'].options);
    return { queued: due.length };
  };
}
