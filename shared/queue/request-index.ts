import { createHash } from 'node:crypto';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { defineScripts, type RedisClient, type ScriptCommand } from '../redis.js';
import type { BookingJob, BookingResult } from './catalog.js';
import { LINE_ENTRY, PARK_LUA, ShowLine, scopeOf, showOfReleasedJob, type LineStanding } from './show-line.js';

/**
 * Finds a booking request inside the batch jobs that carry it (see BookingBatchSchema), gives
 * its place in line, and keeps its result once decided, all in Redis so polling stays off
 * Postgres. Keys, in the project's own namespace beside BullMQ's (`<prefix>:<queue>:...`) and
 * under the same QUEUE_PREFIX, so on Redis Cluster its hash tag keeps them in the queue's slot:
 *
 *   <prefix>:intake:req:<bookingId>   "<jobId>:<seq>" while queued; the result (JSON) once decided;
 *                                     "settled" once a confirm or cancel has started on a decided
 *                                     one (Postgres answers), "<jobId>:<seq>:settled" on a queued one
 *   <prefix>:intake:request:<id>      the request as accepted (as the caller gives it: the API
 *                                     masks the email), until decided, so a removed job's
 *                                     requests can still be shown in full
 *   <prefix>:intake:flow:<id>         "<showId>:<requests before>:<seats before>:<seat count>:<scope>"
 *                                     from its admission into a batch job until a worker takes it:
 *                                     the show's flowing-queue counts (show-line.ts) when it
 *                                     entered, so its seats ahead in the show are O(1) to read
 *   <prefix>:intake:accepted          requests ever enqueued: the newest request's sequence number
 *   <prefix>:intake:taken             requests whose batch a worker has started
 *
 * A request's place in line is `seq - taken`: batches are taken first in, first out. The
 * counters are advisory: an add that failed between the index and the job, a markTaken lost
 * with Redis, or a job removed by hand skews them by its batch, and the skew only grows. So
 * `reconcile()` (a scheduled maintenance job) sets `taken` from the queue itself, the requests
 * in batch jobs no worker has started; positions are clamped, never trusted for correctness.
 *
 * Every key a script touches is declared in its KEYS (the Redis Cluster rule): a lookup reads
 * the entry first, then, for a queued request, its batch job in a second script that names the
 * job's key. The job hash fields read here (timestamp, processedOn, finishedOn, failedReason,
 * returnvalue, data) are BullMQ internals: bullmq is pinned to an exact version, and
 * tests/bullmq-job-hash.test.ts fails if their shape changes.
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
 * Admission: registers a batch of requests, each either into the batch job about to be added or
 * into its show's held line (shared/queue/show-line.ts), decided here, atomically, so a late
 * arrival can never overtake a line being drawn or released.
 *
 * KEYS: accepted, taken, lines:due, then one req key per request, then one flow-place key per
 * request, then (when copies are kept) one copy key per request, then six keys per show named
 * in ARGV (gate, room, held, requests, customers, cum). ARGV: job id, TTL, the number of requests
 * n, '1' when copies are kept, the number of shows S, then two per show: its id and its sales
 * open at (ms), then seven per request: copy (JSON), request (JSON, or '' when withheld), show
 * number (1..S; 0: not line-aware), accepted at (ms), customer key (SHA-256 of the lowercase
 * email; '' when accepted at or after the opening, where it is not read), seat count, scope
 * (show-line.ts scopeOf). What is the show's travels once per show, not once per request: the
 * script's arguments are most of what the API allocates per accepted request.
 *
 * The request itself (its email included) is sent only when it may have to wait in the line:
 * on the hot path (a show on sale, its line not held) the address travels inside the job alone,
 * as before. A request the script finds must wait but was sent without it is left unregistered
 * ('again'): the caller sends it again with the request.
 *
 * The room's opening is recorded by its first entry (HSETNX: an API whose plan of the show is
 * a few seconds stale must not move it back); a PATCHed opening moves it (ShowLine.rescheduleOpening).
 *
 * A line-aware request joins the show's
 *   waiting room  when accepted before sales_open_at and the room is not drawn yet; a second
 *                 entry of the same customer while the first still waits is refused ('dup');
 *   held line     when the show is paused, or its held line is not empty, or a batch released
 *                 from it is not decided yet (a newcomer's job could be decided beside it), or
 *                 an undrawn room waits ahead of it;
 * and otherwise the batch job, taking the next sequence number of the queue (seq) as before, and
 * entering its show's flowing queue: the gate's flow counters grow by it, and its flow place
 * records them as they stood before it (two HINCRBYs and a SET, in this same script).
 * Returns {taken, accepted, kinds, values}: per request 'job' (value: seq), 'room' (0), 'held' (its place
 * in the show's line), 'dup' (0) or 'again' (0).
 */
const ADMIT_SCRIPT = `
local n = tonumber(ARGV[3])
local withCopies = ARGV[4] == '1'
local S = tonumber(ARGV[5])
local showBase = 3 + 2 * n + (withCopies and n or 0)
local kinds, values = {}, {}
for i = 1, n do
  local a = 6 + 2 * S + (i - 1) * 7
  local s = tonumber(ARGV[a + 2])
  local kind = 'job'
  local k = showBase + (s - 1) * 6
  local showId, openAt = ARGV[4 + 2 * s], ARGV[5 + 2 * s]
  if s > 0 then
    local acceptedAt = tonumber(ARGV[a + 3])
    local g = redis.call('HMGET', KEYS[k + 1], 'drawn_at', 'paused', 'inflight')
    if not g[1] and acceptedAt < tonumber(openAt) then
      local other = redis.call('HGET', KEYS[k + 5], ARGV[a + 4])
      local id = cjson.decode(ARGV[a + 1]).id
      if other and other ~= id and redis.call('ZSCORE', KEYS[k + 2], other) then kind = 'dup' else kind = 'room' end
    elseif g[2] or g[3] or redis.call('ZCARD', KEYS[k + 3]) > 0 or (not g[1] and redis.call('ZCARD', KEYS[k + 2]) > 0) then
      kind = 'held'
    end
  end
  if (kind == 'room' or kind == 'held') and ARGV[a + 1] == '' then kind = 'again' end
  kinds[i] = kind
  values[i] = 0
  if kind == 'job' then
    local seq = redis.call('INCR', KEYS[1])
    redis.call('SET', KEYS[3 + i], ARGV[1] .. ':' .. seq, 'EX', ARGV[2])
    values[i] = seq
    if s > 0 then
      local seats = tonumber(ARGV[a + 5])
      local before = redis.call('HINCRBY', KEYS[k + 1], 'flow_in', 1) - 1
      local seatsBefore = redis.call('HINCRBY', KEYS[k + 1], 'flow_seats_in', seats) - seats
      redis.call('SET', KEYS[3 + n + i], showId .. ':' .. before .. ':' .. seatsBefore .. ':' .. seats .. ':' .. ARGV[a + 6], 'EX', ARGV[2])
    end
  elseif kind == 'room' or kind == 'held' then
    local id = cjson.decode(ARGV[a + 1]).id
    redis.call('SET', KEYS[3 + i], 'line:' .. showId, 'EX', ARGV[2])
    redis.call('HSET', KEYS[k + 4], id, ARGV[a + 1])
    if kind == 'room' then
      redis.call('ZADD', KEYS[k + 2], ARGV[a + 3], id)
      redis.call('HSET', KEYS[k + 5], ARGV[a + 4], id)
      redis.call('HSETNX', KEYS[k + 1], 'open_at', openAt)
      redis.call('ZADD', KEYS[3], 'NX', openAt, showId)
    else
      redis.call('ZADD', KEYS[k + 3], redis.call('HINCRBY', KEYS[k + 1], 'seq', 1), id)
      redis.call('ZADD', KEYS[3], 'NX', ARGV[a + 3], showId)
      local place = redis.call('ZCARD', KEYS[k + 3])
      local undrawn = 0
      if not redis.call('HGET', KEYS[k + 1], 'drawn_at') then undrawn = redis.call('ZCARD', KEYS[k + 2]) end
      if undrawn == 0 then
        -- Its place for seats ahead (show-line.ts); behind an undrawn room the draw numbers it.
        redis.call('HSET', KEYS[k + 6], id, redis.call('HINCRBY', KEYS[k + 1], 'seats_in', cjson.decode(ARGV[a + 1]).seat_count))
      end
      values[i] = place + undrawn + tonumber(redis.call('HGET', KEYS[k + 1], 'inflight_requests') or '0')
    end
  end
  if withCopies and kind ~= 'dup' and kind ~= 'again' then redis.call('SET', KEYS[3 + 2 * n + i], ARGV[a], 'EX', ARGV[2]) end
end
return {tonumber(redis.call('GET', KEYS[2]) or '0'), tonumber(redis.call('GET', KEYS[1]) or '0'), kinds, values}
`;

/**
 * KEYS: the batch job's hash, taken, and with a flow place: its show's gate and available
 * counts. ARGV: the request's sequence number, '1' to also return the batch's data, and with a
 * flow place: its requests before, seats before and scope. Replies:
 *   nil                                     the job is gone: decided (Postgres has it), or
 *                                           removed undecided, or its add failed
 *   {timestamp, finishedOn, failedReason, position, data, show}
 * A job a worker has started (processedOn) is next up: position 0. The data of a job that
 * failed for good without a return value comes back unasked: its requests read FAILED. `show`
 * (while waiting, with a flow place): {requests of the show ahead, seats ahead, available in
 * scope or false before any count}, what entered the show's flowing queue before it less what
 * has gone out since (show-line.ts), two reads of hashes.
 */
const JOB_STATE_SCRIPT = `
local f = redis.call('HMGET', KEYS[1], 'timestamp', 'finishedOn', 'failedReason', 'processedOn', 'returnvalue')
if not f[1] then return nil end
local position = false
local show = false
if not f[2] then
  if f[4] then
    position = 0
  else
    local taken = tonumber(redis.call('GET', KEYS[2]) or '0')
    position = math.max(1, tonumber(ARGV[1]) - taken)
    if #KEYS == 4 then
      local out = redis.call('HMGET', KEYS[3], 'flow_out', 'flow_seats_out')
      show = {
        math.max(0, tonumber(ARGV[3]) - tonumber(out[1] or '0')),
        math.max(0, tonumber(ARGV[4]) - tonumber(out[2] or '0')),
        redis.call('HGET', KEYS[4], ARGV[5]) or false,
      }
    end
  end
end
local data = false
if ARGV[2] == '1' or (f[2] and f[3] and not f[5]) then
  data = redis.call('HGET', KEYS[1], 'data')
end
return {f[1], f[2] or false, f[3] or false, position, data, show}
`;

/**
 * A worker starts a batch job, in one round trip: the requests of a paused show go back into
 * its held line (show-line.ts, PARK_LUA), and on the job's first start the batch leaves the
 * line (markTaken: the queue's taken, per show the gate's taken and, for requests the API
 * admitted, the flowing-queue counters and flow places). A script, not a MULTI: ioredis copies
 * every script defined on the connection (BullMQ's too) into each MULTI it builds, which cost
 * more than the commands themselves.
 *
 * A job the API sent in its admission's round trip (`sentWithAdmission`, see
 * RequestIndex.admitWithJob) carries every request of its turn, before the admission put some
 * of them into a show's line or refused them: only a request whose entry names this job is its
 * own ('screen'). The others are left alone, counted nowhere, and answered 2.
 *
 * KEYS: taken, then three per show (gate, held, requests), then one req key per request, then
 * (when they leave the flow) one flow-place key per request. ARGV: job id, '1' to park the
 * requests of paused shows, '1' to count the batch taken, '1' to take it out of the flow, the
 * number of shows S, the number of requests n, '1' to screen, then per show its id, then per
 * request its show's number (1..S), its seat count and its JSON, or '' when not sent.
 *
 * The requests' JSON is needed only to park, so it is sent only when asked: a paused show's
 * request sent without it answers 'again' before anything is written, and the caller sends
 * the batch again with it. Otherwise returns one flag per request: 0 to decide, 1 parked, 2 not
 * this job's. Parked requests count as taken too: they left the queue for their show's line,
 * and count in again when released.
 */
const TAKE_SCRIPT = `
${PARK_LUA}
local S, n = tonumber(ARGV[5]), tonumber(ARGV[6])
local reqBase, r = 1 + 3 * S, 8 + S
local flags, gates = {}, {}
local prefix = ARGV[1] .. ':'
for i = 1, n do
  flags[i] = 0
  if ARGV[7] == '1' then
    local entry = redis.call('GET', KEYS[reqBase + i])
    if not entry or string.sub(entry, 1, #prefix) ~= prefix then flags[i] = 2 end
  end
end
if ARGV[2] == '1' then
  for j = 1, S do gates[j] = redis.call('HMGET', KEYS[3 * j - 1], 'paused', 'inflight') end
  for i = 1, n do
    local a = r + 3 * (i - 1)
    if flags[i] == 0 and gates[tonumber(ARGV[a])][1] and ARGV[a + 2] == '' then return 'again' end
  end
  for i = 1, n do
    local a = r + 3 * (i - 1)
    local j = tonumber(ARGV[a])
    local g = gates[j]
    if flags[i] == 0 and g[1] then
      flags[i] = parkRequest(KEYS[3 * j - 1], KEYS[3 * j], KEYS[3 * j + 1], g[2] == ARGV[1], KEYS[reqBase + i], ARGV[1], ARGV[7 + j], ARGV[a + 2])
    end
  end
end
if ARGV[3] == '1' then
  local counts, seats, total, flowKeys = {}, {}, 0, {}
  for j = 1, S do counts[j], seats[j] = 0, 0 end
  for i = 1, n do
    if flags[i] ~= 2 then
      local a = r + 3 * (i - 1)
      local j = tonumber(ARGV[a])
      counts[j] = counts[j] + 1
      seats[j] = seats[j] + tonumber(ARGV[a + 1])
      total = total + 1
      if ARGV[4] == '1' then flowKeys[#flowKeys + 1] = KEYS[reqBase + n + i] end
    end
  end
  redis.call('INCRBY', KEYS[1], total)
  for j = 1, S do
    if counts[j] > 0 then
      local gate = KEYS[3 * j - 1]
      redis.call('HINCRBY', gate, 'taken', counts[j])
      if ARGV[4] == '1' then
        redis.call('HINCRBY', gate, 'flow_out', counts[j])
        redis.call('HINCRBY', gate, 'flow_seats_out', seats[j])
      end
    end
  end
  if ARGV[4] == '1' and #flowKeys > 0 then redis.call('DEL', unpack(flowKeys)) end
end
return flags
`;

/**
 * KEYS: req keys, then the same requests' copy keys. ARGV: TTL, then one result per request,
 * then optionally a channel and a message to PUBLISH once they are recorded (the live update of
 * these decisions, shared/live/changes.ts: a stream that looks again on it finds them).
 * A result is written only over a plain queued entry: never over a settled mark (a confirm or
 * cancel that raced ahead of this write, reading the decision from Postgres, must not be
 * hidden behind the decision it settled), nor where the entry is gone. The copies go: a
 * decided request is read from Postgres.
 */
const RECORD_SCRIPT = `
local n = #KEYS / 2
for i = 1, n do
  local entry = redis.call('GET', KEYS[i])
  if entry and string.match(entry, '^[^:]+:%d+$') then
    redis.call('SET', KEYS[i], ARGV[i + 1], 'EX', ARGV[1])
  end
end
redis.call('DEL', unpack(KEYS, n + 1, 2 * n))
if #ARGV == n + 3 then redis.call('PUBLISH', ARGV[n + 2], ARGV[n + 3]) end
return n
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
 * KEYS: accepted, taken, then the hashes of the batch jobs the caller found in the queue's
 * unstarted lists (wait, paused, prioritized, delayed). Counts the requests in those no worker
 * has started (no processedOn: a retried or stalled job was taken already) and sets taken so
 * that accepted - taken is that count. Each request in a batch's data carries one
 * "accepted_at" key (a string value cannot hold it unescaped). A job sent with its admission
 * (admitWithJob) may also carry requests its show's line took, counted here until a worker
 * starts it: few, as the API sends a turn that way only while its shows' lines flow
 * (services/api/booking-intake.ts). Returns {waiting before, waiting now}.
 */
const RECONCILE_SCRIPT = `
local waiting = 0
for i = 3, #KEYS do
  local f = redis.call('HMGET', KEYS[i], 'data', 'processedOn')
  if f[1] and not f[2] then
    local _, n = string.gsub(f[1], '"accepted_at":', '')
    waiting = waiting + n
  end
end
local accepted = tonumber(redis.call('GET', KEYS[1]) or '0')
local taken = tonumber(redis.call('GET', KEYS[2]) or '0')
if accepted - taken ~= waiting then redis.call('SET', KEYS[2], accepted - waiting) end
return {accepted - taken, waiting}
`;

/**
 * The scripts, defined on each connection with ioredis's defineCommand (EVALSHA, falling back
 * to EVAL when Redis does not know the script yet; on a Cluster too). Each takes its keys first.
 */
const SCRIPTS = {
  requestIndexAdmit: ADMIT_SCRIPT,
  requestIndexJobState: JOB_STATE_SCRIPT,
  requestIndexRecord: RECORD_SCRIPT,
  requestIndexTake: TAKE_SCRIPT,
  requestIndexSettle: SETTLE_SCRIPT,
  requestIndexReconcile: RECONCILE_SCRIPT,
} as const;
type ScriptCommands = Record<keyof typeof SCRIPTS, ScriptCommand>;
/** The admission script's name in Redis's script cache, for the bare EVALSHA of admitWithJob. */
const ADMIT_SHA = createHash('sha1').update(ADMIT_SCRIPT).digest('hex');

/** A queued entry: "<jobId>:<seq>", with ":settled" once a settle has started. */
const QUEUED_ENTRY = /^([^:]+):(\d+)(:settled)?$/;
/** A flow place (see the keys above); the scope is last, as a section's name may hold a colon. */
const FLOW_PLACE = /^([0-9a-f-]{36}):(\d+):(\d+):(\d+):(.+)$/;

/**
 * Where a request waiting in a batch job stands in its show's flowing queue: the show's
 * requests and seats ahead of it there, approximately (docs/ARCHITECTURE.md gives the bound),
 * and the seats AVAILABLE in its scope as last counted (null before any count).
 */
export type FlowStanding = { showId: string; requestsAhead: number; seatsAhead: number; seatCount: number; availableInScope: number | null };

export type IndexedRequest =
  | { state: 'decided'; result: string }
  /** The entry names a batch job that no longer exists (see JOB_STATE_SCRIPT). */
  | { state: 'job-gone' }
  /** `position` is null once the job has finished (completed or failed). */
  /** `flow` while its job waits, when it entered through a show's counters (every request the API admits). */
  | {
      state: 'in-job';
      acceptedAt: number;
      finishedAt: number | null;
      failedReason: string | null;
      position: number | null;
      batch: BookingJob[] | null;
      flow: FlowStanding | null;
    }
  /** Waiting in its show's held line (shared/queue/show-line.ts), outside any job. */
  | { state: 'in-line'; standing: LineStanding }
  | { state: 'unknown' };

/** A customer's key in a waiting room's one-entry-per-customer check: the address itself stays in the request. */
const customerKey = (email: string) => createHash('sha256').update(email.toLowerCase()).digest('hex');

/**
 * What a worker does with each request of a batch job it starts (RequestIndex.startBatch):
 * decide it, leave it parked back in its paused show's line, or leave it alone, as not this
 * job's (admission put it elsewhere, see RequestIndex.admitWithJob).
 */
export type BatchPart = 'decide' | 'parked' | 'elsewhere';
const BATCH_PARTS: readonly BatchPart[] = ['decide', 'parked', 'elsewhere'];

/** What the flowing-queue counters need of a request leaving a batch job's line. */
export type FlowItem = Pick<BookingJob, 'id' | 'show_id' | 'seat_count'>;

/** Requests and seats per show. */
function byShow(requests: readonly FlowItem[]): Map<string, { count: number; seats: number }> {
  const shows = new Map<string, { count: number; seats: number }>();
  for (const request of requests) {
    const show = shows.get(request.show_id) ?? { count: 0, seats: 0 };
    shows.set(request.show_id, { count: show.count + 1, seats: show.seats + request.seat_count });
  }
  return shows;
}

/** A request to admit; `line` when its show's line may be held (the API's requests). */
export type AdmissionItem = { id: string; copy: BookingJob | null; line: { request: BookingJob; salesOpenAt: number } | null };

/** What one pass of the admission script says: 'again' for a request it wants sent with its JSON. */
export type FirstAdmission = { admitted: Array<Admitted | { kind: 'again' }>; waiting: number };

/** The queue's own connection, the one its job adds go out on (BullMQ's client). */
type QueueConnection = Awaited<ReturnType<Queue['getBackend']>['client']>;

/** Where admission put a request: a batch job (its place in the queue), the waiting room, the held line (its place there), or refused as a second waiting-room entry. */
export type Admitted = { kind: 'job'; position: number } | { kind: 'room' } | { kind: 'held'; position: number } | { kind: 'dup' };

export class RequestIndex {
  private readonly namespace: string;
  /** The held lines of shows, in this index's namespace. */
  readonly line: ShowLine;
  private readonly acceptedKey: string;
  private readonly takenKey: string;
  private readonly unstartedKeys: string[];
  private readonly scripts: ScriptCommands;

  constructor(
    private readonly redis: RedisClient,
    private readonly queue: Queue,
  ) {
    // Beside BullMQ's `<prefix>:<queue>:` keys, never inside them: BullMQ owns its namespace.
    this.namespace = `${queue.opts.prefix ?? 'bull'}:intake:`;
    this.acceptedKey = `${this.namespace}accepted`;
    this.takenKey = `${this.namespace}taken`;
    this.unstartedKeys = ['wait', 'paused', 'prioritized', 'delayed'].map((state) => queue.toKey(state));
    this.scripts = defineScripts(redis, SCRIPTS);
    this.line = new ShowLine(redis, this.namespace);
  }

  /** The key of a request's entry (tests and diagnostics read it as is). */
  keyOf(bookingId: string): string {
    return `${this.namespace}req:${bookingId}`;
  }

  get acceptedCounterKey(): string {
    return this.acceptedKey;
  }

  private copyKeyOf(bookingId: string): string {
    return `${this.namespace}request:${bookingId}`;
  }

  private flowKeyOf(bookingId: string): string {
    return `${this.namespace}flow:${bookingId}`;
  }

  /**
   * Points each request at its batch job (before the job is added). Returns each request's
   * place in line. With `requests`, a copy of each is kept until it is decided: should its job
   * be removed first, the full view can still say what was asked for.
   */
  async register(jobId: string, bookingIds: readonly string[], requests: readonly BookingJob[] = []): Promise<{ positions: number[]; waiting: number }> {
    const { admitted, waiting } = await this.admit(
      jobId,
      bookingIds.map((id, index) => ({ id, copy: requests[index] ?? null, line: null })),
    );
    return { positions: admitted.map((outcome) => (outcome.kind === 'job' ? outcome.position : 0)), waiting };
  }

  /**
   * Registers each request into the batch job `jobId` (before that job is added) or, for a
   * request with `line`, into its show's held line when the line is held (see ADMIT_SCRIPT).
   * `copy` is what the index keeps of the request until it is decided; `line.request` the
   * request itself, kept while it waits in the line (it becomes a job's payload later).
   * `withRequests`: send every request's JSON at once, for requests known to be bound for a
   * held line (a first pass answered them 'again'), so no pass answers 'again'.
   */
  async admit(jobId: string, items: readonly AdmissionItem[], withRequests = false): Promise<{ admitted: Admitted[]; waiting: number }> {
    // The request (with its email) only where it may wait: bound for the waiting room.
    const first = await this.admitOnce(jobId, items, (salesOpenAt, acceptedAt) => withRequests || acceptedAt < salesOpenAt);
    const again = items.filter((_, index) => first.admitted[index]!.kind === 'again');
    if (again.length === 0) return { admitted: first.admitted as Admitted[], waiting: first.waiting };
    // Its show's line is held (paused, or being released): send those again, with the request.
    const second = await this.admitOnce(jobId, again, () => true);
    let next = 0;
    // The second pass sends every request, so it never answers 'again'.
    const admitted = first.admitted.map((outcome) => (outcome.kind === 'again' ? second.admitted[next++]! : outcome)) as Admitted[];
    return { admitted, waiting: second.waiting };
  }

  private async admitOnce(
    jobId: string,
    items: readonly AdmissionItem[],
    sendRequest: (salesOpenAt: number, acceptedAt: number) => boolean,
  ): Promise<FirstAdmission> {
    const { keys, args } = this.admission(jobId, items, sendRequest);
    return this.readAdmission(await this.scripts.requestIndexAdmit(keys.length, ...keys, ...args));
  }

  /**
   * Admits a batch as `admit` does, with its batch job sent in the same round trip: the
   * admission script is written on the queue's own connection, and `sendJob` writes the job's
   * add right behind it, before either reply is back. Redis runs one connection's commands in
   * order, so no worker can take the job before its requests' entries name it. The job is
   * built before the admission says where each request goes, though: it carries them all,
   * marked `sentWithAdmission`, and a worker decides only those whose entry names the job
   * (TAKE_SCRIPT). This is the first pass of `admit` only: a request it answers 'again' is in
   * no job yet.
   *
   * The script goes as a bare EVALSHA. Were Redis not to know it (flushed, or a new server),
   * ioredis would send it again as EVAL once the add had run, out of order; so a NOSCRIPT
   * comes back as `admission: null` instead: the job, if added, holds no request of its own,
   * and the caller admits the batch the usual way, which loads the script.
   */
  async admitWithJob<T>(
    jobId: string,
    items: readonly AdmissionItem[],
    sendJob: (connection: QueueConnection) => Promise<T>,
  ): Promise<{ admission: FirstAdmission | null; job: PromiseSettledResult<T> }> {
    const connection = await this.queue.getBackend().client;
    const { keys, args } = this.admission(jobId, items, (salesOpenAt, acceptedAt) => acceptedAt < salesOpenAt);
    // Both writes in this one synchronous stretch: nothing may be sent on the connection between them.
    const admitting = (connection as unknown as Redis).evalsha(ADMIT_SHA, keys.length, ...keys, ...args);
    const [admitted, job] = await Promise.allSettled([admitting, sendJob(connection)]);
    if (admitted.status === 'fulfilled') return { admission: this.readAdmission(admitted.value), job };
    if (admitted.reason instanceof Error && admitted.reason.message.startsWith('NOSCRIPT')) return { admission: null, job };
    throw admitted.reason;
  }

  private admission(
    jobId: string,
    items: readonly AdmissionItem[],
    sendRequest: (salesOpenAt: number, acceptedAt: number) => boolean,
  ): { keys: string[]; args: Array<string | number> } {
    const withCopies = items.some((item) => item.copy !== null);
    // The batch's shows, each with the opening its first request carried: one opening per show
    // and batch, however the plan cache moved between two requests of the same turn.
    const shows: Array<{ id: string; salesOpenAt: number }> = [];
    const showOf = (showId: string, salesOpenAt: number) => {
      const index = shows.findIndex((show) => show.id === showId);
      if (index >= 0) return { number: index + 1, salesOpenAt: shows[index]!.salesOpenAt };
      shows.push({ id: showId, salesOpenAt });
      return { number: shows.length, salesOpenAt };
    };
    const args = items.flatMap((item) => {
      const copy = item.copy ? JSON.stringify(item.copy) : '';
      if (!item.line) return [copy, '', 0, 0, '', 0, ''];
      const { request } = item.line;
      const show = showOf(request.show_id, item.line.salesOpenAt);
      const acceptedAt = Date.parse(request.accepted_at);
      return [
        copy,
        sendRequest(show.salesOpenAt, acceptedAt) ? JSON.stringify(request) : '',
        show.number,
        acceptedAt,
        // Read only by the waiting room's one-entry check, i.e. before the opening: a hash per
        // request saved on a show on sale.
        acceptedAt < show.salesOpenAt ? customerKey(request.customer_email) : '',
        request.seat_count,
        scopeOf(request.section),
      ];
    });
    const showKeys = shows.flatMap(({ id: showId }) => {
      const keys = this.line.keysOf(showId);
      return [keys.gate, keys.room, keys.held, keys.requests, keys.customers, keys.cum];
    });
    const keys = [
      this.acceptedKey,
      this.takenKey,
      this.line.dueKey,
      ...items.map((item) => this.keyOf(item.id)),
      ...items.map((item) => this.flowKeyOf(item.id)),
      ...(withCopies ? items.map((item) => this.copyKeyOf(item.id)) : []),
      ...showKeys,
    ];
    return {
      keys,
      args: [jobId, QUEUED_TTL_SECONDS, items.length, withCopies ? '1' : '0', shows.length, ...shows.flatMap((show) => [show.id, show.salesOpenAt]), ...args],
    };
  }

  private readAdmission(reply: unknown): FirstAdmission {
    const [taken, accepted, kinds, values] = reply as [number, number, Array<Admitted['kind'] | 'again'>, number[]];
    const admitted = kinds.map((kind, index): Admitted | { kind: 'again' } => {
      const value = values[index]!;
      if (kind === 'job') return { kind, position: Math.max(1, value - taken) };
      if (kind === 'held') return { kind, position: value };
      return { kind };
    });
    return { admitted, waiting: Math.max(0, accepted - taken) };
  }

  /**
   * Undoes a registration whose job could not be added (best effort: Redis may be the reason).
   * Their shows' flowing queues let them go as a worker's take would: the requests admitted
   * behind them no longer count them ahead.
   */
  async unregister(requests: readonly FlowItem[]): Promise<void> {
    const ids = requests.map((request) => request.id);
    await this.outOfFlow(requests, this.redis.multi().del(...ids.flatMap((id) => [this.keyOf(id), this.copyKeyOf(id)])).decrby(this.acceptedKey, ids.length)).exec();
  }

  /**
   * Where a request stands here. One round trip for a decided or unknown request (its entry),
   * two for a queued one (then its batch job, in a script that declares the job's key). The
   * job may finish between the two: that reads as finished, and Postgres has the decision.
   */
  async lookup(bookingId: string, withBatch = false, again = true): Promise<IndexedRequest> {
    // The flow place in the same round trip: a queued request's show keys are named by it.
    const [entry, flowPlace] = await this.redis.mget(this.keyOf(bookingId), this.flowKeyOf(bookingId));
    if (!entry || entry === SETTLED) return { state: 'unknown' };
    if (entry.startsWith('{')) return { state: 'decided', result: entry };
    const held = LINE_ENTRY.exec(entry);
    if (held) {
      const standing = await this.line.standing(held[1]!, bookingId);
      if (standing) return { state: 'in-line', standing };
      // Released into a batch job between the two reads: its entry names the job now.
      return again ? this.lookup(bookingId, withBatch, false) : { state: 'unknown' };
    }
    const queued = QUEUED_ENTRY.exec(entry);
    if (!queued) return { state: 'unknown' };
    const [, jobId, seq, settled] = queued;
    const place = flowPlace ? FLOW_PLACE.exec(flowPlace) : null;
    const showKeys = place ? [this.line.keysOf(place[1]!).gate, this.line.keysOf(place[1]!).available] : [];
    const reply = (await this.scripts.requestIndexJobState(
      2 + showKeys.length,
      this.queue.toKey(jobId!),
      this.takenKey,
      ...showKeys,
      seq!,
      withBatch ? '1' : '0',
      ...(place ? [place[2]!, place[3]!, place[5]!] : []),
    )) as [string, string | null, string | null, number | null, string | null, [number, number, string | null] | null] | null;
    // A settle started on it, so Postgres knew it; with its job gone, Postgres answers.
    if (!reply) return settled ? { state: 'unknown' } : { state: 'job-gone' };
    const [timestamp, finishedOn, failedReason, position, data, show] = reply;
    const flow =
      place && show
        ? { showId: place[1]!, requestsAhead: show[0], seatsAhead: show[1], seatCount: Number(place[4]), availableInScope: show[2] !== null ? Number(show[2]) : null }
        : null;
    return {
      state: 'in-job',
      acceptedAt: Number(timestamp),
      finishedAt: finishedOn ? Number(finishedOn) : null,
      failedReason,
      position: finishedOn ? null : (position ?? 0),
      batch: data ? (JSON.parse(data) as { requests: BookingJob[] }).requests : null,
      flow,
    };
  }

  /** The request as accepted, kept while undecided (see register); null when none was kept. */
  async requestOf(bookingId: string): Promise<BookingJob | null> {
    const copy = await this.redis.get(this.copyKeyOf(bookingId));
    return copy ? (JSON.parse(copy) as BookingJob) : null;
  }

  /** The batch job carrying a request, while it is queued (null once decided or unknown). */
  async jobIdOf(bookingId: string): Promise<string | null> {
    const entry = await this.redis.get(this.keyOf(bookingId));
    return (entry && QUEUED_ENTRY.exec(entry)?.[1]) ?? null;
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

  /**
   * A worker started batch job `jobId` for the first time: the requests in it leave the line.
   * The queue's counter; per show, the gate's `taken` (its decision rate, releases included);
   * and when the API admitted them (not a release from a held line, which the gate's inflight
   * fields count), their shows' flowing queues and flow places. One script (TAKE_SCRIPT).
   */
  async markTaken(requests: readonly FlowItem[], jobId: string): Promise<void> {
    await this.take(requests, jobId, { park: false, taken: true });
  }

  /**
   * A worker starts batch job `jobId` (any attempt): the requests of paused shows go back into
   * their held lines, and with `firstStart` the whole batch is marked taken (markTaken), in one
   * round trip. With `screen` (a job sent with its admission, see admitWithJob), the requests
   * whose entry does not name this job are not its own. Returns what to do with each request.
   */
  async startBatch(requests: readonly BookingJob[], jobId: string, firstStart: boolean, screen = false): Promise<BatchPart[]> {
    const parts = await this.take(requests, jobId, { park: true, taken: firstStart, screen });
    if (parts !== 'again') return parts;
    // A show is paused: its requests go back into its line as they came.
    const again = await this.take(requests, jobId, { park: true, taken: firstStart, screen, requests });
    if (again === 'again') throw new Error('the batch was sent with its requests and still asked for them');
    return again;
  }

  private async take(
    items: readonly FlowItem[],
    jobId: string,
    options: { park: boolean; taken: boolean; screen?: boolean; requests?: readonly BookingJob[] },
  ): Promise<BatchPart[] | 'again'> {
    if (items.length === 0) return [];
    const numberOf = new Map<string, number>();
    for (const item of items) if (!numberOf.has(item.show_id)) numberOf.set(item.show_id, numberOf.size + 1);
    const outOfFlow = options.taken && showOfReleasedJob(jobId) === null;
    const keys = [this.takenKey];
    const args: Array<string | number> = [
      jobId,
      options.park ? '1' : '0',
      options.taken ? '1' : '0',
      outOfFlow ? '1' : '0',
      numberOf.size,
      items.length,
      options.screen ? '1' : '0',
    ];
    for (const showId of numberOf.keys()) {
      const line = this.line.keysOf(showId);
      keys.push(line.gate, line.held, line.requests);
      args.push(showId);
    }
    for (const [at, item] of items.entries()) {
      keys.push(this.keyOf(item.id));
      const request = options.requests?.[at];
      args.push(numberOf.get(item.show_id)!, item.seat_count, request ? JSON.stringify(request) : '');
    }
    if (outOfFlow) for (const item of items) keys.push(this.flowKeyOf(item.id));
    const reply = (await this.scripts.requestIndexTake(keys.length, ...keys, ...args)) as number[] | 'again';
    return reply === 'again' ? reply : reply.map((flag) => BATCH_PARTS[flag]!);
  }

  /** Adds to `multi` what takes `requests` out of their shows' flowing queues. */
  private outOfFlow(requests: readonly FlowItem[], multi: ReturnType<RedisClient['multi']>): ReturnType<RedisClient['multi']> {
    for (const [showId, { count, seats }] of byShow(requests)) {
      const gate = this.line.keysOf(showId).gate;
      multi.hincrby(gate, 'flow_out', count).hincrby(gate, 'flow_seats_out', seats);
    }
    if (requests.length > 0) multi.del(...requests.map((request) => this.flowKeyOf(request.id)));
    return multi;
  }

  /**
   * Sets the line's length from the queue's real state (see above): the unstarted lists first,
   * then one script over those jobs, which is cheap at the depths load shedding allows. A
   * batch added between the two is missed this time (the count is advisory) and counted by
   * the next run.
   */
  async reconcile(): Promise<{ was: number; now: number }> {
    const [wait, paused, prioritized, delayed] = this.unstartedKeys as [string, string, string, string];
    const lists = await Promise.all([
      this.redis.lrange(wait, 0, -1),
      this.redis.lrange(paused, 0, -1),
      this.redis.zrange(prioritized, '0', '-1'),
      this.redis.zrange(delayed, '0', '-1'),
    ]);
    const keys = [this.acceptedKey, this.takenKey, ...lists.flat().map((jobId) => this.queue.toKey(jobId))];
    const [was, now] = (await this.scripts.requestIndexReconcile(keys.length, ...keys)) as [number, number];
    return { was: Math.max(0, was), now };
  }

  /**
   * Records decisions so polls find them without Postgres; one round trip for the batch, which
   * also publishes `then` (a prepared live update) once they are recorded. Without results there
   * is nothing to record, and `then` is left to the caller.
   */
  async recordResults(
    results: ReadonlyArray<readonly [bookingId: string, result: BookingResult]>,
    then?: { channel: string; message: string },
  ): Promise<void> {
    if (results.length === 0) return;
    const keys = [...results.map(([id]) => this.keyOf(id)), ...results.map(([id]) => this.copyKeyOf(id))];
    const publish = then ? [then.channel, then.message] : [];
    await this.scripts.requestIndexRecord(keys.length, ...keys, RESULT_TTL_SECONDS, ...results.map(([, result]) => JSON.stringify(result)), ...publish);
  }

  /**
   * Before a hold is confirmed or cancelled: a recorded HELD would go stale, so the entry now
   * sends polls to Postgres, and a decision recorded later is not written over it.
   */
  async markSettled(bookingId: string): Promise<void> {
    await this.scripts.requestIndexSettle(1, this.keyOf(bookingId));
  }
}
