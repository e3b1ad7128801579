import { eq } from 'drizzle-orm';
import type { Executor } from '../db/client.js';
import { shows } from '../db/schema/index.js';
import type { ShowLine } from '../queue/show-line.js';
import type { DrawProof } from './draw.js';

/**
 * A show's draw as Postgres and the line know it: the seed (secret in Postgres until the draw)
 * for the keeper that draws, and the published proof once it is done. The order itself is
 * shared/booking/draw.ts's; the waiting room and its draw in Redis, shared/queue/show-line.ts's.
 */

export async function drawSeedOf(db: Executor, showId: string): Promise<Buffer | null> {
  const [show] = await db.select({ seed: shows.drawSeed }).from(shows).where(eq(shows.id, showId));
  return show?.seed ?? null;
}

export type ShowDraw =
  | { state: 'unknown-show' }
  /** The sale has not opened yet, or its waiting room waits for the keeper's draw. */
  | { state: 'not-drawn'; salesOpenAt: Date }
  | { state: 'drawn'; proof: DrawProof };

/**
 * The proof of a show's draw. A sale that opened with nobody in its waiting room has an empty
 * draw at its opening: nothing needed drawing, and the seed may be revealed.
 */
export async function showDraw(db: Executor, line: ShowLine, showId: string, now = new Date()): Promise<ShowDraw> {
  const [show] = await db
    .select({ seed: shows.drawSeed, seedSha256: shows.seedSha256, salesOpenAt: shows.salesOpenAt })
    .from(shows)
    .where(eq(shows.id, showId));
  if (!show) return { state: 'unknown-show' };
  const record = await line.drawRecord(showId);
  const reveal = (drawnAt: string, keys: string[]): ShowDraw => ({
    state: 'drawn',
    proof: { seed_sha256: show.seedSha256, seed: show.seed.toString('hex'), drawn_at: drawnAt, entries: keys.length, keys },
  });
  if (record) return reveal(record.drawnAt, record.keys);
  if (now.getTime() >= show.salesOpenAt.getTime() && !(await line.hasRoom(showId))) return reveal(show.salesOpenAt.toISOString(), []);
  return { state: 'not-drawn', salesOpenAt: show.salesOpenAt };
}
