import type { Queue } from 'bullmq';
import type { Database } from '../../../shared/db/client.js';
import { JOBS } from '../../../shared/queue/catalog.js';
import { claimDueDeliveries } from '../../../shared/webhooks/relay.js';

/**
 * The relay's scheduled tick: leases the webhook deliveries that are due (at most `batch`) and
 * queues them as one deliver-webhooks job. One job per tick, not per delivery, keeps the relay's
 * cost in Redis and Postgres a few statements per tick however many events a burst writes;
 * `batch` per tick also caps the relay's share of the machine while a sale is on, so deliveries
 * lag a burst instead of slowing it. If the job is lost (Redis restarted without it) the leases
 * run out and a later tick queues the deliveries again; a worker killed mid-batch leaves the
 * job stalled, and BullMQ runs it again.
 */
export function createRelayWebhooksProcessor(deps: { db: Database; queue: Queue; batch: number; leaseMs: number }) {
  return async function relayWebhooks(): Promise<{ queued: number }> {
    const due = await claimDueDeliveries(deps.db, deps.batch, deps.leaseMs);
    if (due.length === 0) return { queued: 0 };
    const deliveries = due.map((delivery) => ({ delivery_id: delivery.id, attempt: delivery.attempt }));
    await deps.queue.add('deliver-webhooks', { deliveries }, JOBS['deliver-webhooks'].options);
    return { queued: due.length };
  };
}
