import type { Queue } from 'bullmq';
import type { BookingBatch } from './catalog.js';

/** Job states whose requests are not decided yet (a failed job's requests are: PROCESSING_ERROR). */
const UNDECIDED = ['waiting', 'active', 'delayed', 'prioritized', 'waiting-children'] as const;
const PAGE = 500;

/**
 * How many requests for a show wait undecided in the bookings queue. It reads every undecided
 * job, so it is for rare admin checks (deleting a show), never for the booking path; the queue
 * is bounded by load shedding (MAX_QUEUE_DEPTH).
 */
export async function queuedRequestsForShow(queue: Queue, showId: string): Promise<number> {
  let count = 0;
  for (const state of UNDECIDED) {
    for (let start = 0; ; start += PAGE) {
      const jobs = await queue.getJobs([state], start, start + PAGE - 1, true);
      for (const job of jobs) {
        const batch = job?.data as BookingBatch | undefined;
        count += batch?.requests?.filter((request) => request.show_id === showId).length ?? 0;
      }
      if (jobs.length < PAGE) break;
    }
  }
  return count;
}
