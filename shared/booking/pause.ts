import { eq, sql } from 'drizzle-orm';
import type { Database } from '../db/client.js';
import { shows } from '../db/schema/index.js';
import type { ShowLine } from '../queue/show-line.js';

/**
 * Pausing and resuming a sale. What holds the line is the show's gate in Redis
 * (shared/queue/show-line.ts): requests accepted while paused wait in its held line, and a
 * worker that takes an earlier batch of the show parks its requests back there, so nothing more
 * is decided from the moment the gate says so; resume releases the line in order. `paused_at`
 * in Postgres is what the show views read (sales_state PAUSED). The gate is written first: a
 * failure after it leaves the sale held with views a step behind, and repeating the call (it is
 * idempotent) brings them in line.
 */

/** False when there is no such show. */
export async function pauseSale(db: Database, line: ShowLine, showId: string): Promise<boolean> {
  if (!(await showExists(db, showId))) return false;
  await line.pause(showId);
  // A second pause keeps the first one's time.
  await db
    .update(shows)
    .set({ pausedAt: sql`coalesce(${shows.pausedAt}, now())` })
    .where(eq(shows.id, showId));
  return true;
}

export async function resumeSale(db: Database, line: ShowLine, showId: string): Promise<boolean> {
  if (!(await showExists(db, showId))) return false;
  await line.resume(showId);
  await db.update(shows).set({ pausedAt: null }).where(eq(shows.id, showId));
  return true;
}

async function showExists(db: Database, showId: string): Promise<boolean> {
  const [show] = await db.select({ id: shows.id }).from(shows).where(eq(shows.id, showId));
  return show !== undefined;
}
