import type { Queue } from 'bullmq';
import type { BookingBatch } from './catalog.js';

/** Job states whose requests are not decided yet (a failed job's requests are: PROCESSING_ERROR). */
export const UNDECIDED_JOB_STATES = ['waiting', 'active', 'delayed', 'prioritized', 'waiting-children'] as const;
const UNDECIDED = UNDECIDED_JOB_STATES;
const PAGE = 500;

/**
 * How many requests wait undecided in the bookings queue, per show. It reads every undecided
 * job, so it is for rare admin checks (deleting a show) and counts shared by a whole process
 * (LineSizes), never once per booking; the queue is bounded by load shedding (MAX_QUEUE_DEPTH).
 */
export async function queuedRequestsByShow(queue: Queue): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  for (const state of UNDECIDED) {
    for (let start = 0; ; start += PAGE) {
      const jobs = await queue.getJobs([state], start, start + PAGE - 1, true);
      for (const job of jobs) {
        for (const request of (job?.data as BookingBatch | undefined)?.requests ?? []) {
          counts.set(request.show_id, (counts.get(request.show_id) ?? 0) + 1);
        }
      }
      if (jobs.length < PAGE) break;
    }
  }
  return counts;
}

/** How many requests for one show wait undecided in the bookings queue, counted now. */
export async function queuedRequestsForShow(queue: Queue, showId: string): Promise<number> {
  return (await queuedRequestsByShow(queue)).get(showId) ?? 0;
}
