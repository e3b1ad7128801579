import type { Queue } from 'bullmq';
import { queuedRequestsByShow } from './pending.js';

/** How long one count of the queue answers every show view of this process. */
const COUNT_MAX_AGE_MS = 1_000;

/**
 * `in_line` of the show views: how many requests per show wait undecided. The one place it is
 * computed, so the line (issue 13's waiting room) can replace it with its own per-show counts.
 * For now it counts the undecided batch jobs of the bookings queue (queuedRequestsByShow), once
 * per second at most per process however many views ask.
 */
export class LineSizes {
  private counted: { at: number; counts: Promise<Map<string, number>> } | null = null;

  constructor(private readonly queue: Queue) {}

  /**
   * Requests in line for this show now (0 when none), or null when the queue cannot be read
   * (Redis down): show views need only Postgres and keep answering through an outage.
   */
  async of(showId: string): Promise<number | null> {
    try {
      return (await this.all()).get(showId) ?? 0;
    } catch {
      return null;
    }
  }

  private all(): Promise<Map<string, number>> {
    if (!this.counted || Date.now() - this.counted.at > COUNT_MAX_AGE_MS) {
      const counts = queuedRequestsByShow(this.queue);
      this.counted = { at: Date.now(), counts };
      // A failed count is not kept: the next view asks again.
      counts.catch(() => {
        if (this.counted?.counts === counts) this.counted = null;
      });
    }
    return this.counted.counts;
  }
}
