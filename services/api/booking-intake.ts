import { createHash } from 'node:crypto';
import type { Queue } from 'bullmq';
import type { RedisClient } from '../../shared/redis.js';
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
/**
 * A poll finds its job in the wait list by scanning from the oldest end (LPOS RANK -1), so the
 * cost is the number of jobs ahead of it. Past this many the exact place matters little: the
 * poll answers with the list length (an upper bound) instead of scanning further.
 */
const LPOS_MAX_SCAN = 20_000;

/**
 * Reads a job's state in one step. A job never taken by a worker (no processedOn) is in the
 * wait list: its position is how many are ahead plus one, found by scanning from the oldest
 * end (LPOS RANK -1), at most LPOS_MAX_SCAN deep; deeper than that, the list length bounds it.
 * A job taken at least once (running, or waiting to retry) is next up: position 0.
 * Reply: [timestamp, finishedOn, returnvalue, failedReason, data, position] or nil if no job.
 */
const LOOKUP_SCRIPT = `
local f = redis.call('HMGET', KEYS[1], 'timestamp', 'finishedOn', 'returnvalue', 'failedReason', 'processedOn', 'data')
if not f[1] then return nil end
local position = false
if not f[2] then
  if f[5] then
    position = 0
  else
    local length = redis.call('LLEN', KEYS[2])
    local index = redis.call('LPOS', KEYS[2], ARGV[1], 'RANK', -1, 'MAXLEN', tonumber(ARGV[2]))
    if index then position = length - index else position = length end
  end
end
local data = false
if ARGV[3] == '1' or (f[2] and f[4] and not f[3]) then data = f[6] end
return {f[1], f[2], f[3], f[4], data, position}
`;
const LOOKUP_SHA = createHash('sha1').update(LOOKUP_SCRIPT).digest('hex');
type LookupReply = [string, string | null, string | null, string | null, string | null, number | null];

export type Submitted = { id: string; replayed: boolean; position: number | null };

export type QueuedState =
  /** `data` is present only when asked for (`withData`). */
  | { state: 'queued'; position: number; data: BookingJob | null; acceptedAt: number }
  | { state: 'finished'; result: BookingResult | null }
  /** Exhausted its retries (an outage that outlasted them); an operator can retry it. */
  | { state: 'failed'; data: BookingJob; finishedAt: number }
  | { state: 'absent' };

export class BookingIntake {
  private depth = { value: 0, sampledAt: 0 };

  constructor(
    private readonly queue: Queue,
    private readonly redis: RedisClient,
    private readonly options: { maxQueueDepth: number; keyPrefix: string; isDecided: (id: string) => Promise<boolean> },
  ) {}

  /**
   * Enqueues a booking request. With an idempotency key, the first request with that key wins:
   * a repeat with the same body gets the same id back (and no second job), a repeat with a
   * different body is refused with 422.
   */
  async submit(job: BookingJob, idempotencyKey: string | undefined): Promise<Submitted> {
    await this.shedIfOverloaded();
    if (!idempotencyKey) return { id: job.id, replayed: false, position: await this.enqueue(job) };
    const key = `${this.options.keyPrefix}:idem:${sha256(idempotencyKey)}`;
    const fingerprint = sha256(
      JSON.stringify([job.show_id, job.customer_email, job.seat_count, job.section, job.seats]),
    );
    const claimed = await this.redis.set(key, JSON.stringify({ id: job.id, fingerprint }), 'EX', IDEMPOTENCY_TTL_SECONDS, 'NX');
    if (claimed === 'OK') {
      try {
        return { id: job.id, replayed: false, position: await this.enqueue(job) };
      } catch (error) {
        // Not enqueued, so the key must not point at a request that does not exist.
        await this.redis.del(key).catch(() => {});
        throw error;
      }
    }
    const stored = await this.redis.get(key);
    const previous = stored ? (JSON.parse(stored) as { id: string; fingerprint: string }) : null;
    if (!previous) return this.submit(job, idempotencyKey); // expired between SET and GET
    if (previous.fingerprint !== fingerprint) {
      throw new AppError(422, 'IDEMPOTENCY_KEY_REUSED', 'Idempotency-Key was already used with a different request body', [
        { field: 'Idempotency-Key', problem: 'already used with a different body' },
      ]);
    }
    const current = await this.lookup(previous.id);
    if (current.state === 'absent' && !(await this.options.isDecided(previous.id))) {
      // Neither queued nor decided: the first attempt lost its enqueue (Redis went away between
      // the key and the job). Enqueue it now under the same id, so the request is not lost;
      // were it decided meanwhile after all, the worker would return that decision unchanged.
      return { id: previous.id, replayed: true, position: await this.enqueue({ ...job, id: previous.id }) };
    }
    return { id: previous.id, replayed: true, position: current.state === 'queued' ? current.position : null };
  }

  /**
   * Where a request stands in Redis; `absent` means ask Postgres (decided and cleaned up, or
   * unknown). One round trip: the script reads the job hash and, only for a job still waiting,
   * its place in the wait list. `withData` also returns the request itself (for the full view).
   */
  async lookup(id: string, options: { withData?: boolean } = {}): Promise<QueuedState> {
    const reply = (await this.redis.evalsha(LOOKUP_SHA, 2, this.queue.toKey(id), this.queue.keys.wait!, id, LPOS_MAX_SCAN, options.withData ? 1 : 0).catch(
      (error: Error) => {
        if (!/NOSCRIPT/.test(error.message)) throw error;
        return this.redis.eval(LOOKUP_SCRIPT, 2, this.queue.toKey(id), this.queue.keys.wait!, id, LPOS_MAX_SCAN, options.withData ? 1 : 0);
      },
    )) as LookupReply | null;
    if (!reply) return { state: 'absent' };
    const [timestamp, finishedOn, returnValue, failedReason, data, position] = reply;
    if (finishedOn) {
      if (failedReason && !returnValue) return { state: 'failed', data: JSON.parse(data!), finishedAt: Number(finishedOn) };
      const parsed = BookingResultSchema.safeParse(returnValue ? JSON.parse(returnValue) : null);
      return { state: 'finished', result: parsed.success ? parsed.data : null };
    }
    return { state: 'queued', position: position ?? 0, data: data ? JSON.parse(data) : null, acceptedAt: Number(timestamp) };
  }

  async waitingCount(): Promise<number> {
    return this.queue.getWaitingCount();
  }

  /** Adds the job and returns its approximate queue position (new jobs join the back of the line). */
  private async enqueue(job: BookingJob): Promise<number> {
    const spec = JOBS['process-booking'];
    // The booking id is the job id: a duplicate add of the same id is a no-op in BullMQ.
    await this.queue.add('process-booking', job, { ...spec.options, jobId: job.id });
    // The sampled depth plus what this process added since: close enough for a first answer,
    // and it saves a round trip on the hottest path. Status polls report the exact place.
    this.depth.value += 1;
    return this.depth.value;
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
