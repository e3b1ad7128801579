import type { Database } from '../../../shared/db/client.js';
import type { Logger } from '../../../shared/logger.js';
import { pruneWebhookHistory, type PruneLimits } from '../../../shared/webhooks/prune.js';

/** How often the outbox is pruned: often enough that a run's bounded chunks keep up with a busy day. */
export const PRUNE_WEBHOOKS_EVERY_MS = 60_000;

/**
 * At most 20 chunks of 1,000 events per run (20,000 a minute, 1.2 million an hour), each chunk
 * a short statement of its own.
 */
export const PRUNE_CHUNK = 1_000;
export const PRUNE_MAX_CHUNKS = 20;

/** The scheduled retention run of the webhook outbox (shared/webhooks/prune.ts). */
export function createPruneWebhooksProcessor(deps: { db: Database; logger: Logger; limits: PruneLimits }) {
  return async function pruneWebhooks(): Promise<{ events: number }> {
    const pruned = await pruneWebhookHistory(deps.db, deps.limits);
    if (pruned.events > 0) deps.logger.info(pruned, 'pruned delivered webhook events');
    return pruned;
  };
}
