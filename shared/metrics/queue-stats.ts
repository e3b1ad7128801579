import type { Queue } from 'bullmq';

/** What an operator watches on a queue: how many jobs are in each state and how long the oldest has waited. */

export const QUEUE_STATES = ['waiting', 'active', 'delayed', 'failed'] as const;
export type QueueState = (typeof QUEUE_STATES)[number];

export async function readJobCounts(queue: Queue): Promise<Record<QueueState, number>> {
  const counts = await queue.getJobCounts(...QUEUE_STATES);
  return Object.fromEntries(QUEUE_STATES.map((state) => [state, counts[state] ?? 0])) as Record<QueueState, number>;
}

/** Seconds since the oldest waiting job was added (its accept time), 0 when none waits. */
export async function readOldestWaitingAgeSeconds(queue: Queue, now = Date.now()): Promise<number> {
  const [oldest] = await queue.getJobs(['wait'], 0, 0, true);
  if (!oldest?.timestamp) return 0;
  return Math.max(0, (now - oldest.timestamp) / 1_000);
}
