import { createHash } from 'node:crypto';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { AppError } from '../../shared/errors.js';
import { BookingResultSchema, JOBS, type BookingJob, type BookingResult } from '../../shared/queue/catalog.js';

/**
 * The API's side of the queue: accepting a booking request into Redis (with idempotency keys
 * and load shedding) and reading a queued request's state back without touching Postgres.
 */

/** Keys are kept a little over the promised 24 hours. */
const IDEMPOTENCY_TTL_SECONDS = 25 * 3_600;
/** How long a sampled queue depth is trusted: one LLEN per quarter second, not per request. */
const DEPTH_SAMPLE_MS = 250;

export type QueuedState =
  | { state: 'queued'; position: number; data: BookingJob; acceptedAt: number }
  | { state: 'finished'; result: BookingResult | null }
  /** Exhausted its retries (an outage that outlasted them); an operator can retry it. */
  | { state: 'failed'; data: BookingJob; finishedAt: number }
  | { state: 'absent' };

export class BookingIntake {
  private depth = { value: 0, sampledAt: 0 };

  constructor(
    private readonly queue: Queue,
    private readonly redis: Redis,
    private readonly options: { maxQueueDepth: number; keyPrefix: string },
  ) {}

  /**
   * Enqueues a booking request. With an idempotency key, the first request with that key wins:
   * a repeat with the same body gets the same id back (and no second job), a repeat with a
   * different body is refused with 422.
   */
  async submit(job: BookingJob, idempotencyKey: string | undefined): Promise<{ id: string; replayed: boolean }> {
    await this.shedIfOverloaded();
    if (!idempotencyKey) {
      await this.enqueue(job);
      return { id: job.id, replayed: false };
    }
    const key = `${this.options.keyPrefix}:idem:${sha256(idempotencyKey)}`;
    const fingerprint = sha256(
      JSON.stringify([job.show_id, job.customer_email, job.seat_count, job.section, job.seats]),
    );
    const claimed = await this.redis.set(key, JSON.stringify({ id: job.id, fingerprint }), 'EX', IDEMPOTENCY_TTL_SECONDS, 'NX');
    if (claimed === 'OK') {
      try {
        await this.enqueue(job);
      } catch (error) {
        // Not enqueued, so the key must not point at a request that does not exist.
        await this.redis.del(key).catch(() => {});
        throw error;
      }
      return { id: job.id, replayed: false };
    }
    const stored = await this.redis.get(key);
    const previous = stored ? (JSON.parse(stored) as { id: string; fingerprint: string }) : null;
    if (!previous) return this.submit(job, idempotencyKey); // expired between SET and GET
    if (previous.fingerprint !== fingerprint) {
      throw new AppError(422, 'IDEMPOTENCY_KEY_REUSED', 'Idempotency-Key was already used with a different request body', [
        { field: 'Idempotency-Key', problem: 'already used with a different body' },
      ]);
    }
    return { id: previous.id, replayed: true };
  }

  /** Where a request stands in Redis; `absent` means ask Postgres (decided and cleaned up, or unknown). */
  async lookup(id: string): Promise<QueuedState> {
    const jobKey = this.queue.toKey(id);
    const results = await this.redis
      .multi()
      .hmget(jobKey, 'timestamp', 'finishedOn', 'returnvalue', 'failedReason', 'data')
      .lpos(this.queue.keys.wait!, id, 'RANK', -1)
      .llen(this.queue.keys.wait!)
      .exec();
    if (!results) throw new Error('Redis transaction aborted');
    const [[, fields], [, index], [, length]] = results as [
      [unknown, (string | null)[]],
      [unknown, number | null],
      [unknown, number],
    ];
    const [timestamp, finishedOn, returnValue, failedReason, data] = fields;
    if (!timestamp || !data) return { state: 'absent' };
    if (finishedOn) {
      if (failedReason && !returnValue) return { state: 'failed', data: JSON.parse(data), finishedAt: Number(finishedOn) };
      const parsed = BookingResultSchema.safeParse(returnValue ? JSON.parse(returnValue) : null);
      return { state: 'finished', result: parsed.success ? parsed.data : null };
    }
    // In the wait list: how many are ahead, plus one. Active or retrying: next up.
    const position = index === null ? 0 : length - index;
    return { state: 'queued', position, data: JSON.parse(data), acceptedAt: Number(timestamp) };
  }

  async waitingCount(): Promise<number> {
    return this.queue.getWaitingCount();
  }

  private async enqueue(job: BookingJob): Promise<void> {
    const spec = JOBS['process-booking'];
    // The booking id is the job id: a duplicate add of the same id is a no-op in BullMQ.
    await this.queue.add('process-booking', job, { ...spec.options, jobId: job.id });
    this.depth.value += 1;
  }

  /** The cheap path under overload: refuse at once rather than grow the queue without bound. */
  private async shedIfOverloaded(): Promise<void> {
    const now = Date.now();
    if (now - this.depth.sampledAt > DEPTH_SAMPLE_MS) {
      this.depth = { value: await this.queue.getWaitingCount(), sampledAt: now };
    }
    if (this.depth.value >= this.options.maxQueueDepth) {
      throw new AppError(503, 'QUEUE_FULL', 'Too many requests are waiting; try again shortly', undefined, 5);
    }
  }
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');
