import { sql } from 'drizzle-orm';
import type { Executor } from '../db/client.js';

/**
 * Retention of the outbox: events older than the retention period whose deliveries are all
 * settled (DELIVERED or FAILED) are deleted, with their deliveries (the foreign key's cascade,
 * by webhook_deliveries_event_idx). Without it the outbox grows by an event and a delivery per
 * webhook for every booking change, for ever.
 *
 * Oldest first, in chunks of `chunk` events, each its own statement (its own transaction when
 * `db` is the pool), at most `maxChunks` per run: a run holds few locks, writes a bounded amount
 * of WAL and ends soon, so the maintenance queue it shares with the hold sweep and the relay
 * never waits long; a backlog is worked off over the next runs. A chunk looks only at the
 * `chunk` oldest fanned-out events: an event still PENDING there (only possible when the
 * retention is shorter than the retry window) stays until its deliveries settle, the rest of the
 * chunk goes.
 */
export type PruneLimits = { retentionHours: number; chunk: number; maxChunks: number };

export async function pruneWebhookHistory(db: Executor, limits: PruneLimits): Promise<{ events: number }> {
  let events = 0;
  for (let run = 0; run < limits.maxChunks; run++) {
    const { rows } = await db.execute<{ deleted: number }>(sql`
      WITH oldest AS (
        SELECT id, occurred_at FROM webhook_events WHERE fanned_out_at IS NOT NULL ORDER BY id LIMIT ${limits.chunk}
      ), expired AS (
        SELECT o.id FROM oldest o
        WHERE o.occurred_at < clock_timestamp() - make_interval(hours => ${limits.retentionHours})
          AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = o.id AND d.status = 'PENDING')
      ), deleted AS (
        DELETE FROM webhook_events e USING expired WHERE e.id = expired.id RETURNING 1
      )
      SELECT count(*)::int AS deleted FROM deleted`);
    const deleted = rows[0]?.deleted ?? 0;
    events += deleted;
    if (deleted === 0) break;
  }
  return { events };
}
