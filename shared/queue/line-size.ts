import type { Queue } from 'bullmq';
import { queuedRequestsByShow } from './pending.js';
import type { ShowLine } from './show-line.js';

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

  /** `line`: the shows' held lines (waiting room, pause), counted beside the queue's jobs. */
  constructor(
    private readonly queue: Queue,
    private readonly line: ShowLine | null = null,
  ) {}

  /**
   * Requests in line for this show now (0 when none), or null when the queue cannot be read
   * (Redis down): show views need only Postgres and keep answering through an outage.
   */
  async of(showId: string): Promise<number | null> {
    try {
      const [inJobs, held] = await Promise.all([this.all(), this.line?.length(showId) ?? 0]);
      return (inJobs.get(showId) ?? 0) + held;
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
