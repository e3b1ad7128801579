import type { Database } from '../../../shared/db/client.js';
import type { Logger } from '../../../shared/logger.js';
import type { DeliverWebhookJob } from '../../../shared/queue/catalog.js';
import { attemptDelivery, type AttemptOutcome, type RetryPolicy } from '../../../shared/webhooks/relay.js';
import type { Sender } from '../../../shared/webhooks/send.js';

/** One attempt of one webhook delivery; the outcome is recorded on the delivery row. */
export function createDeliverWebhookProcessor(deps: {
  db: Database;
  sender: Sender;
  policy: RetryPolicy;
  logger: Logger;
  onAttempt?: (outcome: AttemptOutcome) => void;
}) {
  return async function deliverWebhook(job: DeliverWebhookJob): Promise<AttemptOutcome> {
    const outcome = await attemptDelivery(deps.db, deps.sender, { id: job.delivery_id, attempt: job.attempt }, deps.policy);
    deps.onAttempt?.(outcome);
    if (outcome.kind === 'FAILED') {
      deps.logger.warn({ delivery: job.delivery_id, attempts: job.attempt, err: outcome.error }, 'webhook delivery failed for good');
    }
    return outcome;
  };
}
