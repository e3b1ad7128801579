import { createHash } from 'node:crypto';
import type { Queue } from 'bullmq';
import type { RedisClient } from '../redis.js';
import type { BookingJob, BookingResult } from './catalog.js';

/**
 * Finds a booking request inside the batch jobs that carry it (see BookingBatchSchema), gives
 * its place in line, and keeps its result once decided, all in Redis so polling stays off
 * Postgres. Keys, under the bookings queue's own prefix (one hash slot on Redis Cluster):
 *
 *   <queue>:req:<bookingId>   "<jobId>:<seq>" while queued; the result (JSON) once decided;
 *                             "settled" once a confirm or cancel has started on a decided one
 *                             (Postgres answers), "<jobId>:<seq>:settled" on a queued one
 *   <queue>:intake:accepted   requests ever enqueued: the newest request's sequence number
 *   <queue>:intake:taken      requests whose batch a worker has started
 *
 * A request's place in line is `seq - taken`: batches are taken first in, first out. The
 * counters are advisory: an add that failed between the index and the job, a markTaken lost
 * with Redis, or a job removed by hand skews them by its batch, and the skew only grows. So
 * `reconcile()` (a scheduled maintenance job) sets `taken` from the queue itself, the requests
 * in batch jobs no worker has started; positions are clamped, never trusted for correctness.
 */

/**
 * A queued request's entry outlives any plausible wait (retries of an outage included), and
 * the failed job that may still carry it (kept 7 days, catalog.ts): while the entry is there, a
 * job removed before it decided its requests is told apart from an unknown id.
 */
const QUEUED_TTL_SECONDS = 8 * 24 * 3_600;
/** A decided request's result is only needed while its client polls; Postgres keeps the decision. */
const RESULT_TTL_SECONDS = 3_600;
/** Written over a request's entry before its hold is settled: from then on, Postgres answers. */
const SETTLED = 'settled';

/**
 * KEYS: accepted, taken, then one req key per request. ARGV: job id, TTL.
 * Returns [sequence number of the last request, taken].
 */
const REGISTER_SCRIPT = `
local last = redis.call('INCRBY', KEYS[1], #KEYS - 2)
local first = last - (#KEYS - 2)
for i = 3, #KEYS do
  redis.call('SET', KEYS[i], ARGV[1] .. ':' .. (first + i - 2), 'EX', ARGV[2])
end
return {last, tonumber(redis.call('GET', KEYS[2]) or '0')}
`;

/**
 * KEYS: the request's key, taken. ARGV: the queue's key prefix ("<prefix>:bookings:"), '1' to
 * also return the batch's data. Replies:
 *   nil                                     unknown here: ask Postgres
 *   {'result', json}                        decided
 *   {'gone'}                                its job is gone: decided (Postgres has it), or
 *                                           removed undecided, or its add failed
 *   {'job', timestamp, finishedOn, failedReason, position, data}
 * A job a worker has started (processedOn) is next up: position 0.
 */
const LOOKUP_SCRIPT = `
local entry = redis.call('GET', KEYS[1])
if not entry or entry == '${SETTLED}' then return nil end
if string.sub(entry, 1, 1) == '{' then return {'result', entry} end
local job, seq = string.match(entry, '^([^:]+):(%d+)')
local f = redis.call('HMGET', ARGV[1] .. job, 'timestamp', 'finishedOn', 'failedReason', 'processedOn', 'returnvalue')
if not f[1] then return {'gone'} end
local position = false
if not f[2] then
  if f[4] then
    position = 0
  else
    local taken = tonumber(redis.call('GET', KEYS[2]) or '0')
    position = math.max(1, tonumber(seq) - taken)
  end
end
local data = false
if ARGV[2] == '1' or (f[2] and f[3] and not f[5]) then
  data = redis.call('HGET', ARGV[1] .. job, 'data')
end
return {'job', f[1], f[2] or false, f[3] or false, position, data}
`;

/**
 * KEYS: req keys. ARGV: TTL, then one result per key. A result is written only over a plain
 * queued entry: never over a settled mark (a confirm or cancel that raced ahead of this write,
 * reading the decision from Postgres, must not be hidden behind the decision it settled), nor
 * where the entry is gone.
 */
const RECORD_SCRIPT = `
for i = 1, #KEYS do
  local entry = redis.call('GET', KEYS[i])
  if entry and string.match(entry, '^[^:]+:%d+$') then
    redis.call('SET', KEYS[i], ARGV[i + 1], 'EX', ARGV[1])
  end
end
return #KEYS
`;

/**
 * KEYS: the request's key. Marks it settled: a decided entry becomes "settled", a queued one
 * keeps its job and place with ":settled" appended (a client may settle a hold it saw in
 * Postgres before the worker recorded it). A missing entry stays missing.
 */
const SETTLE_SCRIPT = `
local entry = redis.call('GET', KEYS[1])
if not entry or entry == '${SETTLED}' then return 0 end
if string.sub(entry, 1, 1) == '{' then
  redis.call('SET', KEYS[1], '${SETTLED}', 'KEEPTTL')
elseif string.match(entry, '^[^:]+:%d+$') then
  redis.call('SET', KEYS[1], entry .. ':${SETTLED}', 'KEEPTTL')
end
return 1
`;

/**
 * KEYS: accepted, taken, then the queue's wait, paused, prioritized and delayed keys. ARGV: the
 * queue's key prefix. Counts the requests in batch jobs no worker has started (no processedOn:
 * a retried or stalled job was taken already) and sets taken so that accepted - taken is that
 * count. Each request in a batch's data carries one "accepted_at" key (a string value cannot
 * hold it unescaped). Returns {waiting before, waiting now}.
 */
const RECONCILE_SCRIPT = `
local waiting = 0
local function count(ids)
  for _, id in ipairs(ids) do
    local f = redis.call('HMGET', ARGV[1] .. id, 'data', 'processedOn')
    if f[1] and not f[2] then
      local _, n = string.gsub(f[1], '"accepted_at":', '')
      waiting = waiting + n
    end
  end
end
count(redis.call('LRANGE', KEYS[3], 0, -1))
count(redis.call('LRANGE', KEYS[4], 0, -1))
count(redis.call('ZRANGE', KEYS[5], 0, -1))
count(redis.call('ZRANGE', KEYS[6], 0, -1))
local accepted = tonumber(redis.call('GET', KEYS[1]) or '0')
local taken = tonumber(redis.call('GET', KEYS[2]) or '0')
if accepted - taken ~= waiting then redis.call('SET', KEYS[2], accepted - waiting) end
return {accepted - taken, waiting}
`;

const sha1 = (text: string) => createHash('sha1').update(text).digest('hex');
const REGISTER_SHA = sha1(REGISTER_SCRIPT);
const LOOKUP_SHA = sha1(LOOKUP_SCRIPT);
const RECORD_SHA = sha1(RECORD_SCRIPT);
const SETTLE_SHA = sha1(SETTLE_SCRIPT);
const RECONCILE_SHA = sha1(RECONCILE_SCRIPT);

export type IndexedRequest =
  | { state: 'decided'; result: string }
  /** The entry names a batch job that no longer exists (see LOOKUP_SCRIPT). */
  | { state: 'job-gone' }
  /** `position` is null once the job has finished (completed or failed). */
  | { state: 'in-job'; acceptedAt: number; finishedAt: number | null; failedReason: string | null; position: number | null; batch: BookingJob[] | null }
  | { state: 'unknown' };

export class RequestIndex {
  private readonly acceptedKey: string;
  private readonly takenKey: string;
  private readonly jobKeyPrefix: string;
  private readonly unstartedKeys: string[];

  constructor(
    private readonly redis: RedisClient,
    queue: Queue,
  ) {
    this.acceptedKey = queue.toKey('intake:accepted');
    this.takenKey = queue.toKey('intake:taken');
    this.jobKeyPrefix = queue.toKey('');
    this.unstartedKeys = ['wait', 'paused', 'prioritized', 'delayed'].map((state) => queue.toKey(state));
  }

  private requestKey(bookingId: string): string {
    return `${this.jobKeyPrefix}req:${bookingId}`;
  }

  /** Points each request at its batch job (before the job is added). Returns each request's place in line. */
  async register(jobId: string, bookingIds: readonly string[]): Promise<{ positions: number[]; waiting: number }> {
    const keys = [this.acceptedKey, this.takenKey, ...bookingIds.map((id) => this.requestKey(id))];
    const [last, taken] = (await this.script(REGISTER_SHA, REGISTER_SCRIPT, keys, [jobId, QUEUED_TTL_SECONDS])) as [number, number];
    const first = last - bookingIds.length;
    return {
      positions: bookingIds.map((_, index) => Math.max(1, first + index + 1 - taken)),
      waiting: Math.max(0, last - taken),
    };
  }

  /** Undoes a registration whose job could not be added (best effort: Redis may be the reason). */
  async unregister(bookingIds: readonly string[]): Promise<void> {
    await this.redis.del(...bookingIds.map((id) => this.requestKey(id)));
    await this.redis.decrby(this.acceptedKey, bookingIds.length);
  }

  async lookup(bookingId: string, withBatch = false): Promise<IndexedRequest> {
    const reply = (await this.script(LOOKUP_SHA, LOOKUP_SCRIPT, [this.requestKey(bookingId), this.takenKey], [this.jobKeyPrefix, withBatch ? '1' : '0'])) as
      | ['result', string]
      | ['gone']
      | ['job', string, string | null, string | null, number | null, string | null]
      | null;
    if (!reply) return { state: 'unknown' };
    if (reply[0] === 'result') return { state: 'decided', result: reply[1] };
    if (reply[0] === 'gone') return { state: 'job-gone' };
    const [, timestamp, finishedOn, failedReason, position, data] = reply;
    return {
      state: 'in-job',
      acceptedAt: Number(timestamp),
      finishedAt: finishedOn ? Number(finishedOn) : null,
      failedReason,
      position: finishedOn ? null : (position ?? 0),
      batch: data ? (JSON.parse(data) as { requests: BookingJob[] }).requests : null,
    };
  }

  /** The batch job carrying a request, while it is queued (null once decided or unknown). */
  async jobIdOf(bookingId: string): Promise<string | null> {
    const entry = await this.redis.get(this.requestKey(bookingId));
    if (!entry || entry.startsWith('{') || entry === SETTLED) return null;
    return entry.slice(0, entry.indexOf(':'));
  }

  /** Requests accepted and not yet started by a worker (advisory, see above). */
  async waiting(): Promise<number> {
    const [accepted, taken] = await this.redis.mget(this.acceptedKey, this.takenKey);
    return Math.max(0, Number(accepted ?? 0) - Number(taken ?? 0));
  }

  /** Requests workers have started so far (a counter that only grows): its rate is the line's drain rate. */
  async taken(): Promise<number> {
    return Number((await this.redis.get(this.takenKey)) ?? 0);
  }

  /** A worker started a batch for the first time: the requests in it leave the line. */
  async markTaken(count: number): Promise<void> {
    await this.redis.incrby(this.takenKey, count);
  }

  /**
   * Sets the line's length from the queue's real state (see above). One script: it reads every
   * unstarted batch's data, which is cheap at the depths load shedding allows.
   */
  async reconcile(): Promise<{ was: number; now: number }> {
    const keys = [this.acceptedKey, this.takenKey, ...this.unstartedKeys];
    const [was, now] = (await this.script(RECONCILE_SHA, RECONCILE_SCRIPT, keys, [this.jobKeyPrefix])) as [number, number];
    return { was: Math.max(0, was), now };
  }

  /** Records decisions so polls find them without Postgres; one round trip for the batch. */
  async recordResults(results: ReadonlyArray<readonly [bookingId: string, result: BookingResult]>): Promise<void> {
    if (results.length === 0) return;
    const keys = results.map(([id]) => this.requestKey(id));
    await this.script(RECORD_SHA, RECORD_SCRIPT, keys, [RESULT_TTL_SECONDS, ...results.map(([, result]) => JSON.stringify(result))]);
  }

  /**
   * Before a hold is confirmed or cancelled: a recorded HELD would go stale, so the entry now
   * sends polls to Postgres, and a decision recorded later is not written over it.
   */
  async markSettled(bookingId: string): Promise<void> {
    await this.script(SETTLE_SHA, SETTLE_SCRIPT, [this.requestKey(bookingId)], []);
  }

  private async script(sha: string, source: string, keys: string[], args: Array<string | number>): Promise<unknown> {
    try {
      return await this.redis.evalsha(sha, keys.length, ...keys, ...args);
    } catch (error) {
      if (!/NOSCRIPT/.test((error as Error).message)) throw error;
      return this.redis.eval(source, keys.length, ...keys, ...args);
    }
  }
}
