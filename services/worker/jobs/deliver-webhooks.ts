import type { Database } from '../../../shared/db/client.js';
import type { Logger } from '../../../shared/logger.js';
import type { DeliverWebhooksJob } from '../../../shared/queue/catalog.js';
import { attemptDeliveries, type AttemptOutcome, type RetryPolicy } from '../../../shared/webhooks/relay.js';
import type { Sender } from '../../../shared/webhooks/send.js';

/** One attempt of each delivery of a relay tick's batch; the outcomes are recorded on the delivery rows. */
export function createDeliverWebhooksProcessor(deps: {
  db: Database;
  sender: Sender;
  policy: RetryPolicy;
  /** Requests in flight at once. */
  concurrency: number;
  logger: Logger;
  onAttempt?: (outcome: AttemptOutcome) => void;
}) {
  return async function deliverWebhooks(job: DeliverWebhooksJob): Promise<Record<string, number>> {
    const batch = job.deliveries.map((delivery) => ({ id: delivery.delivery_id, attempt: delivery.attempt }));
    const outcomes = await attemptDeliveries(deps.db, deps.sender, batch, deps.policy, deps.concurrency);
    const counts: Record<string, number> = {};
    outcomes.forEach((outcome, index) => {
      deps.onAttempt?.(outcome);
      counts[outcome.kind] = (counts[outcome.kind] ?? 0) + 1;
      if (outcome.kind === 'FAILED') {
        deps.logger.warn({ delivery: batch[index]!.id, attempts: batch[index]!.attempt, err: outcome.error }, 'webhook delivery failed for good');
      }
    });
    return counts;
  };
}
