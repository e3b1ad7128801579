import type { Job } from 'bullmq';
import type { BookingBatch, BookingJob } from '../../shared/queue/catalog.js';
import type { RequestIndex } from '../../shared/queue/request-index.js';
import type { RedisClient } from '../../shared/redis.js';

/**
 * The requests a waiting batch job holds as its own: all of them, or for a job the API sent with
 * its admission (`sentWithAdmission`), those whose index entry names the job: the others the
 * admission put elsewhere, and a worker leaves them alone (RequestIndex.admitWithJob).
 */
export async function ownRequests(redis: RedisClient, index: RequestIndex, job: Pick<Job, 'id' | 'data'>): Promise<BookingJob[]> {
  const { requests, sentWithAdmission } = job.data as BookingBatch;
  if (!sentWithAdmission) return requests;
  const entries = await Promise.all(requests.map((request) => redis.get(index.keyOf(request.id))));
  return requests.filter((_, at) => entries[at]?.startsWith(`${job.id}:`));
}
