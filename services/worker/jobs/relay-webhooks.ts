import type { Queue } from 'bullmq';
import type { Database } from '../../../shared/db/client.js';
import { deliverWebhookJobId, JOBS } from '../../../shared/queue/catalog.js';
import { claimDueDeliveries } from '../../../shared/webhooks/relay.js';

/**
 * The relay's scheduled tick: leases the webhook deliveries that are due and queues one
 * attempt each. The lease outlasts a queued attempt's wait and its send; if the job is lost
 * (Redis restarted without it, a worker killed mid-send) the lease runs out and a later tick
 * queues the delivery again.
 */
export function createRelayWebhooksProcessor(deps: { db: Database; queue: Queue; batch: number; leaseMs: number }) {
  return async function relayWebhooks(): Promise<{ queued: number }> {
    const due = await claimDueDeliveries(deps.db, deps.batch, deps.leaseMs);
    if (due.length === 0) return { queued: 0 };
    await deps.queue.addBulk(
      due.map((delivery) => {
        const data = { delivery_id: delivery.id, attempt: delivery.attempt };
        return { name: 'deliver-webhook', data, opts: { ...JOBS['deliver-webhook'].options, jobId: deliverWebhookJobId(data) } };
      }),
    );
    return { queued: due.length };
  };
}
