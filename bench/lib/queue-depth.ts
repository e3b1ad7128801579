import type { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { QUEUES } from '../../shared/queue/catalog.js';
import { openQueue } from '../../shared/queue/queues.js';
import { RequestIndex } from '../../shared/queue/request-index.js';
import type { RunStats } from './stats.js';

/**
 * Queue depth over time, from the most honest source available:
 * - `redis`: requests waiting, from the request index's counters (requests travel in batch
 *   jobs, so BullMQ's job counts would count batches), and batch jobs active, read from Redis;
 * - `api-positions`: without Redis access, the largest queue position the API reported since the
 *   last sample. A 202's position is the depth at that moment (the new job is last in line);
 *   once submissions stop, poll positions only give a lower bound. The report says which it is.
 */

/** `waiting` counts requests; `active` counts batch jobs being worked on. */
export type DepthReading = { waiting: number | null; active: number | null };

export interface DepthProbe {
  readonly source: 'redis' | 'api-positions';
  read(): Promise<DepthReading>;
  close(): Promise<void>;
}

export class RedisDepthProbe implements DepthProbe {
  readonly source = 'redis' as const;
  private readonly redis: Redis;
  private readonly queue: Queue;
  private readonly index: RequestIndex;

  constructor(url: string, prefix: string) {
    this.redis = new Redis(url, { maxRetriesPerRequest: 1, enableOfflineQueue: true, lazyConnect: false });
    this.redis.on('error', () => {}); // a failed reading is a gap in the chart, not a crash
    this.queue = openQueue(QUEUES.bookings, this.redis, prefix);
    this.index = new RequestIndex(this.redis, this.queue);
  }

  async read(): Promise<DepthReading> {
    try {
      const [waiting, active] = await Promise.all([this.index.waiting(), this.queue.getActiveCount()]);
      return { waiting, active };
    } catch {
      return { waiting: null, active: null };
    }
  }

  async close(): Promise<void> {
    await this.queue.close().catch(() => {});
    this.redis.disconnect();
  }
}

export class ApiPositionProbe implements DepthProbe {
  readonly source = 'api-positions' as const;

  constructor(private readonly stats: RunStats) {}

  async read(): Promise<DepthReading> {
    const fromAccepts = this.stats.latestAcceptPosition;
    const fromPolls = this.stats.latestPollPosition;
    this.stats.latestAcceptPosition = null;
    this.stats.latestPollPosition = null;
    return { waiting: fromAccepts ?? fromPolls, active: null };
  }

  async close(): Promise<void> {}
}
