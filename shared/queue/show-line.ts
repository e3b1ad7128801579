import { defineScripts, type RedisClient, type ScriptCommand } from '../redis.js';
import type { BookingJob } from './catalog.js';

/**
 * A show's held line: the requests that wait in Redis, undecided and outside BullMQ, while the
 * show's line is held, either because its waiting room has not been drawn yet or because an
 * operator paused the sale. One mechanism for both: a held request sits in the show's `held`
 * sorted set in line order (or in `room` until the draw), its request (email included, as a
 * job carries it) in the `requests` hash, and its request index entry reads `line:<showId>`.
 * The worker's line keeper (services/worker/line-keeper.ts) draws the room at sales_open_at and
 * releases the held line into batch jobs in line order, and the admission script
 * (request-index.ts) decides per request whether it joins the held line or goes straight into a
 * batch job, in the same script that registers it: a late arrival can never overtake a line
 * being released, because while `held` is not empty newcomers join its end.
 *
 * Keys, in the request index's namespace (same QUEUE_PREFIX hash tag on Redis Cluster):
 *
 *   <ns>line:<show>:gate       hash: open_at (ms, once anyone waited), drawn_at (ISO), entries,
 *                              paused (ms), seq (a counter: a newcomer's place at the end),
 *                              batches (releases done), inflight (the released batch job not
 *                              decided yet) with its inflight_requests and inflight_seats,
 *                              taken (requests of the show workers took: its decision rate),
 *                              and the show's flowing-queue counters (below)
 *   <ns>line:<show>:room       zset: the waiting room, undrawn (score: accepted at, ms)
 *   <ns>line:<show>:held       zset: the held line in line order (scores below)
 *   <ns>line:<show>:requests   hash: booking id -> the request (JSON) while in room or held
 *   <ns>line:<show>:customers  hash: lowercase email -> booking id of its waiting-room entry
 *   <ns>line:<show>:cum        hash: booking id -> the seats of the held line up to and including
 *                              it, counted from the gate's seats_in (see "Seats ahead" below)
 *   <ns>line:<show>:left       zset: `<seats>:<id>` of requests that left the held line from
 *                              the middle, scored by their cum (until a release passes them)
 *   <ns>line:<show>:draw       the draw's keys in draw order (JSON), kept for the proof
 *   <ns>line:<show>:keeper     the lease of the keeper working on the show (line-keeper.ts)
 *   <ns>line:<show>:available  hash: seats AVAILABLE now, `*` in the show, `s:<section>` in a
 *                              section (written by shared/booking/available-seats.ts)
 *   <ns>lines:due              zset: show ids with a line to draw or release (score: when, ms)
 *
 * Scores of `held`, ascending: requests parked back by a worker (PARKED_BASE + their original
 * sequence: they were released first, so they stand first), then the drawn room (DRAWN_BASE +
 * draw rank), then newcomers (the gate's seq, from 1). Doubles hold these exactly.
 *
 * Seats ahead, in O(1) per poll however long the line: a held request's `cum` is the seats
 * given a place before it and with it (the gate's `seats_in`, a running total, when it joined
 * the end; the draw numbers the room, then the late arrivals behind it). The seats ahead of it
 * are then its cum, less its own seats, less the seats that have gone from ahead of it since:
 * released (the gate's `seats_out`, as a release always takes the head) and left from the middle
 * (the `left` zset, summed up to its cum: few). Requests parked back stand ahead of every other
 * and have no cum (their few seats are summed one by one), and the released batch in flight
 * stands ahead of all (the gate's inflight_seats). A request without a cum (parked, or a late
 * arrival before the draw numbered it) is summed one by one over the line ahead of it.
 *
 * The flowing queue (requests of the show the API admitted straight into batch jobs, not yet
 * taken by a worker) is counted per show in the gate, so a poll of one of them finds what is
 * ahead of it there in O(1): `flow_in`/`flow_seats_in` grow as the admission script
 * (request-index.ts) puts a request of the show into a job, `flow_out`/`flow_seats_out` as
 * workers take those jobs (the request index's markTaken) or a failed add gives them back. Each
 * request entering records the show's counts before it (its flow place, request-index.ts), so
 * what is still ahead of it is its count before less what has gone out since. Released batches
 * are not in these counters: the gate's inflight fields count the one in flight.
 */

const PARKED_BASE = -2e15;
const DRAWN_BASE = -1e15;
/** A request index entry of a request in a show's held line. */
export const LINE_ENTRY = /^line:([0-9a-f-]{36})$/;
export const lineEntry = (showId: string) => `line:${showId}`;

/**
 * A request's scope for its outlook: its section's seats (`s:<name>`), or the show's (`*`) for
 * best available. The fields of the `available` hash; the scripts below build the same in Lua.
 */
export const scopeOf = (section: string | null) => (section === null ? '*' : `s:${section}`);

/**
 * The id of a show's `batch`-th released batch job: named by the show and the gate's count, so
 * a keeper that died after adding it adds the same id again (BullMQ keeps the first).
 */
export const releasedJobId = (showId: string, batch: number) => `line-${showId}-${batch}`;
const RELEASED_JOB = /^line-([0-9a-f-]{36})-\d+$/;
/** The show whose held line a batch job was released from; null for any other job. */
export function showOfReleasedJob(jobId: string): string | null {
  return RELEASED_JOB.exec(jobId)?.[1] ?? null;
}

/** Lua: the seat_count of a request's JSON (0 when it has none). */
const SEAT_COUNT_LUA = `local function seatCount(json) return tonumber(string.match(json or '', '"seat_count":(%d+)') or '0') end`;

/**
 * KEYS: gate, room, held, draw, due, requests, cum, left. ARGV: drawn at (ISO), the keys
 * (JSON), show id, then the room's ids in draw order. Draws once: a gate with drawn_at is left
 * alone (0). A room that does not hold exactly these ids (a request joined or left since they
 * were read) answers -1: read it again. Otherwise the room moves into the held line ahead of
 * every newcomer (1), and the line is numbered for seats ahead from here: every seat numbered
 * before counts as gone (seats_out), the room in draw order, then the late arrivals behind it.
 */
const DRAW_SCRIPT = `
${SEAT_COUNT_LUA}
if redis.call('HEXISTS', KEYS[1], 'drawn_at') == 1 then return 0 end
local n = #ARGV - 3
if redis.call('ZCARD', KEYS[2]) ~= n then return -1 end
for i = 1, n do
  if not redis.call('ZSCORE', KEYS[2], ARGV[i + 3]) then return -1 end
end
local late = redis.call('ZRANGEBYSCORE', KEYS[3], '(${DRAWN_BASE}', '+inf')
for i = 1, n do
  redis.call('ZADD', KEYS[3], ${DRAWN_BASE} + i, ARGV[i + 3])
end
local cum = tonumber(redis.call('HGET', KEYS[1], 'seats_in') or '0')
redis.call('HSET', KEYS[1], 'seats_out', cum)
redis.call('DEL', KEYS[8])
local function number(id)
  cum = cum + seatCount(redis.call('HGET', KEYS[6], id))
  redis.call('HSET', KEYS[7], id, cum)
end
for i = 1, n do number(ARGV[i + 3]) end
for _, id in ipairs(late) do number(id) end
redis.call('HSET', KEYS[1], 'seats_in', cum)
redis.call('SET', KEYS[4], ARGV[2])
redis.call('HSET', KEYS[1], 'drawn_at', ARGV[1], 'entries', n)
redis.call('DEL', KEYS[2])
return 1
`;

/**
 * KEYS: accepted, held, requests, gate, cum, left, then the req keys of the released requests. ARGV: the
 * batch job's id, the show id, then the released ids. Runs after the job was added: each
 * request still held leaves the line, takes the next sequence number of the queue (its place in
 * BullMQ's line) and its entry points at the job. The gate's count of released batches moves
 * on (the next batch's job id) and the job is the show's one batch in flight: nothing more is
 * released, and newcomers join the held line, until it is decided (RELEASE_DECIDED_SCRIPT).
 * The show stays due meanwhile, so a keeper finds a batch whose worker died before handing on.
 * The seats released count as gone from ahead of everyone (seats_out), and so do those of the
 * requests that left from the part of the line this release passed.
 * Returns how many left the line.
 */
const RELEASE_SCRIPT = `
${SEAT_COUNT_LUA}
redis.call('HINCRBY', KEYS[4], 'batches', 1)
local released, seats, out, passed = 0, 0, 0, nil
local line = 'line:' .. ARGV[2]
for i = 3, #ARGV do
  if redis.call('ZREM', KEYS[2], ARGV[i]) == 1 then
    local own = seatCount(redis.call('HGET', KEYS[3], ARGV[i]))
    seats = seats + own
    local cum = tonumber(redis.call('HGET', KEYS[5], ARGV[i]) or '')
    if cum then
      out = out + own
      if not passed or cum > passed then passed = cum end
      redis.call('HDEL', KEYS[5], ARGV[i])
    end
    redis.call('HDEL', KEYS[3], ARGV[i])
    local seq = redis.call('INCR', KEYS[1])
    if redis.call('GET', KEYS[i + 4]) == line then
      redis.call('SET', KEYS[i + 4], ARGV[1] .. ':' .. seq, 'KEEPTTL')
    end
    released = released + 1
  end
end
if passed then
  for _, member in ipairs(redis.call('ZRANGEBYSCORE', KEYS[6], '-inf', passed)) do
    out = out + tonumber(string.match(member, '^(%d+):'))
  end
  redis.call('ZREMRANGEBYSCORE', KEYS[6], '-inf', passed)
end
if out > 0 then redis.call('HINCRBY', KEYS[4], 'seats_out', out) end
-- A release that moved nothing (its requests left meanwhile, or a stale redo) keeps the batch
-- in flight it found: losing track of that one would let the next overtake it.
if released > 0 or not redis.call('HGET', KEYS[4], 'inflight') then
  redis.call('HSET', KEYS[4], 'inflight', ARGV[1], 'inflight_requests', released, 'inflight_seats', seats)
end
return released
`;

/**
 * KEYS: gate. ARGV: a released batch job's id. The job is decided (or will never be): it is no
 * longer the show's batch in flight, and the next may be released. A job that is not the one
 * in flight (a redelivery of an older one) changes nothing. Returns 1 when it was.
 */
const RELEASE_DECIDED_SCRIPT = `
if redis.call('HGET', KEYS[1], 'inflight') ~= ARGV[1] then return 0 end
redis.call('HDEL', KEYS[1], 'inflight', 'inflight_requests', 'inflight_seats')
return 1
`;

/**
 * Lua: parks one request of a batch job back into its show's held line, the show being paused
 * (the request index's TAKE_SCRIPT calls it for every request of a paused show when a worker
 * starts the job). A request whose entry still points at this job goes back at its original
 * sequence (ahead of everything held: it was released first), and no longer counts in the
 * batch in flight when the job is the show's released batch (`inflight`), so positions stay
 * exact. Returns 1 when parked, 0 when the request is to be decided.
 */
export const PARK_LUA = `
local function parkRequest(gate, held, requests, inflight, reqKey, jobId, showId, json)
  local prefix = jobId .. ':'
  local entry = redis.call('GET', reqKey)
  if not entry or string.sub(entry, 1, #prefix) ~= prefix then return 0 end
  local seq = tonumber(string.sub(entry, #prefix + 1))
  if not seq then return 0 end
  local request = cjson.decode(json)
  redis.call('ZADD', held, ${PARKED_BASE} + seq, request.id)
  redis.call('HSET', requests, request.id, json)
  redis.call('SET', reqKey, 'line:' .. showId, 'KEEPTTL')
  if inflight then
    redis.call('HINCRBY', gate, 'inflight_requests', -1)
    redis.call('HINCRBY', gate, 'inflight_seats', -request.seat_count)
  end
  return 1
end
`;

/**
 * KEYS: gate, room, held, requests, available, cum, left. ARGV: the booking id. Where a request in the held
 * line stands: {phase, position, open_at, paused, request, seats ahead, available, requests of
 * the show ahead}; phase 'room' (undrawn, position 0, nothing ahead yet) or 'held'. A late arrival waiting for the draw stands
 * behind the whole room; every held request stands behind the released batch in flight (the
 * gate counts its requests and seats). nil: not in the line (released or left meanwhile: read
 * its entry again).
 *
 * Seats ahead: from its cum (see above), or the seat_count of every request ahead of it in the
 * line, read from their JSON (HMGET in chunks, so unpack stays within Lua's limits); plus the
 * show's flowing queue (its requests admitted into batch jobs no worker has taken yet: all ahead
 * of the held line), from the gate's flow counters. Available: the count of its scope (its
 * section's, or the show's for best available) as last written, false before any count was
 * written. Requests ahead: the flowing queue's and its position's.
 */
const STATE_SCRIPT = `
${SEAT_COUNT_LUA}
local g = redis.call('HMGET', KEYS[1], 'open_at', 'paused', 'drawn_at', 'inflight_requests', 'inflight_seats', 'seats_out', 'flow_in', 'flow_seats_in', 'flow_out', 'flow_seats_out')
local request = redis.call('HGET', KEYS[4], ARGV[1])
if not request then return nil end
if redis.call('ZSCORE', KEYS[2], ARGV[1]) then
  return {'room', 0, g[1] or false, g[2] or false, request, 0, false, 0}
end
local rank = redis.call('ZRANK', KEYS[3], ARGV[1])
if not rank then return nil end
local ahead = {}
if not g[3] then ahead = redis.call('ZRANGE', KEYS[2], 0, -1) end
local flowing = math.max(0, tonumber(g[7] or '0') - tonumber(g[9] or '0'))
local seats = tonumber(g[5] or '0') + math.max(0, tonumber(g[8] or '0') - tonumber(g[10] or '0'))
local function add(ids)
  for i = 1, #ids, 500 do
    local chunk = redis.call('HMGET', KEYS[4], unpack(ids, i, math.min(i + 499, #ids)))
    for _, json in ipairs(chunk) do seats = seats + seatCount(json) end
  end
end
local cum = tonumber(redis.call('HGET', KEYS[6], ARGV[1]) or '')
if cum then
  local before = cum - seatCount(request)
  seats = seats + before - tonumber(g[6] or '0')
  for _, member in ipairs(redis.call('ZRANGEBYSCORE', KEYS[7], '-inf', before)) do
    seats = seats - tonumber(string.match(member, '^(%d+):'))
  end
  add(redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', '(${DRAWN_BASE}'))
else
  add(ahead)
  if rank > 0 then add(redis.call('ZRANGE', KEYS[3], 0, rank - 1)) end
end
local position = rank + 1 + #ahead + tonumber(g[4] or '0')
local section = cjson.decode(request).section
local scope = '*'
if type(section) == 'string' then scope = 's:' .. section end
local available = redis.call('HGET', KEYS[5], scope)
return {'held', position, g[1] or false, g[2] or false, request, seats, available or false, flowing + position - 1}
`;

/**
 * KEYS: the request's req key, room, held, requests, cum, left. ARGV: the booking id. Takes a
 * request out of the line (it will never be released) and marks its entry settled: Postgres,
 * which has its CANCELLED row already, answers polls from now on. Its seats are gone from
 * ahead of those behind it (the `left` zset). Returns 1 when it was still in the line.
 */
const LEAVE_SCRIPT = `
${SEAT_COUNT_LUA}
local left = redis.call('ZREM', KEYS[2], ARGV[1]) + redis.call('ZREM', KEYS[3], ARGV[1])
local cum = redis.call('HGET', KEYS[5], ARGV[1])
if cum then
  redis.call('ZADD', KEYS[6], cum, seatCount(redis.call('HGET', KEYS[4], ARGV[1])) .. ':' .. ARGV[1])
  redis.call('HDEL', KEYS[5], ARGV[1])
end
redis.call('HDEL', KEYS[4], ARGV[1])
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('SET', KEYS[1], 'settled', 'KEEPTTL') end
return left
`;

/**
 * KEYS: gate, due. ARGV: the show id, now (ms). Resumes: the line is due for release now.
 * Pausing is one HSET; the keeper unschedules a paused show only atomically with its check
 * (UNSCHEDULE_SCRIPT), so a resume can never be lost between the two.
 */
const RESUME_SCRIPT = `
redis.call('HDEL', KEYS[1], 'paused')
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
return 1
`;

/**
 * KEYS: gate, held, room, due. ARGV: show id. Unschedules a show that is paused or has nothing
 * left to draw or release and no released batch in flight (a keeper must keep looking at that
 * one until it is decided: its worker may die before handing on). A paused show's batch in
 * flight is looked at again on resume.
 */
const UNSCHEDULE_SCRIPT = `
local idle = redis.call('ZCARD', KEYS[2]) == 0 and redis.call('ZCARD', KEYS[3]) == 0 and redis.call('HEXISTS', KEYS[1], 'inflight') == 0
if redis.call('HEXISTS', KEYS[1], 'paused') == 1 or idle then
  redis.call('ZREM', KEYS[4], ARGV[1])
  return 1
end
return 0
`;

/** KEYS: the lease. ARGV: owner, ms. Takes or renews the lease; 1 when this owner holds it. */
const LEASE_SCRIPT = `
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
`;

/** KEYS: the lease. ARGV: owner. Gives the lease back if this owner holds it. */
const UNLEASE_SCRIPT = `
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
`;

/** KEYS: gate, room, due. ARGV: show id, the new opening (ms). Moves an undrawn room's opening. */
const RESCHEDULE_SCRIPT = `
if redis.call('HEXISTS', KEYS[1], 'drawn_at') == 1 or redis.call('ZCARD', KEYS[2]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'open_at', ARGV[2])
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
return 1
`;

const SCRIPTS = {
  showLineReschedule: RESCHEDULE_SCRIPT,
  showLineLease: LEASE_SCRIPT,
  showLineUnlease: UNLEASE_SCRIPT,
  showLineDraw: DRAW_SCRIPT,
  showLineRelease: RELEASE_SCRIPT,
  showLineReleaseDecided: RELEASE_DECIDED_SCRIPT,
  showLineState: STATE_SCRIPT,
  showLineLeave: LEAVE_SCRIPT,
  showLineResume: RESUME_SCRIPT,
  showLineUnschedule: UNSCHEDULE_SCRIPT,
} as const;
type ScriptCommands = Record<keyof typeof SCRIPTS, ScriptCommand>;

export type LineKeys = { gate: string; room: string; held: string; requests: string; customers: string; cum: string; left: string; draw: string; available: string };

export type LineStanding = {
  phase: 'room' | 'held';
  /** 0 in the undrawn room (no place yet); from 1 in the held line. */
  position: number;
  salesOpenAt: number | null;
  paused: boolean;
  request: BookingJob;
  /** Seats asked for by the requests ahead of it in the show's line (0 in the room). */
  seatsAhead: number;
  /** Requests of the show ahead of it: its flowing queue, then its place's (0 in the room). */
  requestsAhead: number;
  /** Seats AVAILABLE in its scope (its section, else the show) as last counted; null before any count. */
  availableInScope: number | null;
};

export type DrawRecord = { drawnAt: string; entries: number; keys: string[] };

export class ShowLine {
  private readonly scripts: ScriptCommands;
  readonly dueKey: string;

  /** `namespace` is the request index's (`<QUEUE_PREFIX>:intake:`). */
  constructor(
    private readonly redis: RedisClient,
    private readonly namespace: string,
  ) {
    this.scripts = defineScripts(redis, SCRIPTS);
    this.dueKey = `${namespace}lines:due`;
  }

  keysOf(showId: string): LineKeys {
    const base = `${this.namespace}line:${showId}:`;
    return {
      gate: `${base}gate`,
      room: `${base}room`,
      held: `${base}held`,
      requests: `${base}requests`,
      customers: `${base}customers`,
      cum: `${base}cum`,
      left: `${base}left`,
      draw: `${base}draw`,
      available: `${base}available`,
    };
  }

  /** Where a request in the line stands; null when it is not (or no longer) there. */
  async standing(showId: string, bookingId: string): Promise<LineStanding | null> {
    const keys = this.keysOf(showId);
    const reply = (await this.scripts.showLineState(7, keys.gate, keys.room, keys.held, keys.requests, keys.available, keys.cum, keys.left, bookingId)) as
      | ['room' | 'held', number, string | null, string | null, string, number, string | null, number]
      | null;
    if (!reply) return null;
    const [phase, position, openAt, paused, request, seatsAhead, available, requestsAhead] = reply;
    return {
      phase,
      position,
      salesOpenAt: openAt ? Number(openAt) : null,
      paused: paused !== null,
      request: JSON.parse(request) as BookingJob,
      seatsAhead,
      requestsAhead,
      availableInScope: available !== null ? Number(available) : null,
    };
  }

  /** Requests waiting in the show's line (room and held), for the show views' `in_line`. */
  async length(showId: string): Promise<number> {
    const keys = this.keysOf(showId);
    const [room, held] = (await this.redis.multi().zcard(keys.room).zcard(keys.held).exec()) ?? [];
    return Number(room?.[1] ?? 0) + Number(held?.[1] ?? 0);
  }

  /** Holds the show's line: nothing more of it is released or decided until resume. */
  async pause(showId: string, now = Date.now()): Promise<void> {
    await this.redis.hset(this.keysOf(showId).gate, 'paused', now);
  }

  async resume(showId: string, now = Date.now()): Promise<void> {
    await this.scripts.showLineResume(2, this.keysOf(showId).gate, this.dueKey, showId, now);
  }

  /** Requests of the show workers have taken so far, released batches included (a counter that only grows: its rate is the show's decision rate). */
  async taken(showId: string): Promise<number> {
    return Number((await this.redis.hget(this.keysOf(showId).gate, 'taken')) ?? 0);
  }

  async isPaused(showId: string): Promise<boolean> {
    return (await this.redis.hexists(this.keysOf(showId).gate, 'paused')) === 1;
  }

  /** Shows with a line to draw or release by `now`. */
  async due(now: number, limit: number): Promise<string[]> {
    return this.redis.zrangebyscore(this.dueKey, '-inf', now, 'LIMIT', 0, limit);
  }

  /**
   * The gate as the keeper reads it before acting; `batches` names the next release's job,
   * `inflight` the released batch job not decided yet (null: the next may be released).
   */
  async gate(showId: string): Promise<{ openAt: number | null; drawnAt: string | null; paused: boolean; batches: number; inflight: string | null }> {
    const [openAt, drawnAt, paused, batches, inflight] = await this.redis.hmget(this.keysOf(showId).gate, 'open_at', 'drawn_at', 'paused', 'batches', 'inflight');
    return { openAt: openAt ? Number(openAt) : null, drawnAt: drawnAt ?? null, paused: paused !== null, batches: Number(batches ?? 0), inflight: inflight ?? null };
  }

  /**
   * One keeper at a time per show (a lease, renewed while it works): two would interleave their
   * releases. A keeper that dies loses it when it lapses, and the next one goes on from where
   * the line stands, which every step keeps consistent.
   */
  async lease(showId: string, owner: string, ms: number): Promise<boolean> {
    return (await this.scripts.showLineLease(1, `${this.namespace}line:${showId}:keeper`, owner, ms)) === 1;
  }

  async unlease(showId: string, owner: string): Promise<void> {
    await this.scripts.showLineUnlease(1, `${this.namespace}line:${showId}:keeper`, owner);
  }

  /** The undrawn room's ids (any order: the draw orders them). */
  async roomIds(showId: string): Promise<string[]> {
    return this.redis.zrange(this.keysOf(showId).room, '0', '-1');
  }

  /**
   * Moves the room into the held line in draw order, once: 'drawn' (now or before), or
   * 'changed' when the room is not what was read (read it again).
   */
  async draw(showId: string, drawnAt: Date, entries: ReadonlyArray<{ id: string; key: string }>): Promise<'drawn' | 'changed'> {
    const keys = this.keysOf(showId);
    const outcome = (await this.scripts.showLineDraw(
      8,
      keys.gate,
      keys.room,
      keys.held,
      keys.draw,
      this.dueKey,
      keys.requests,
      keys.cum,
      keys.left,
      drawnAt.toISOString(),
      JSON.stringify(entries.map((entry) => entry.key)),
      showId,
      ...entries.map((entry) => entry.id),
    )) as number;
    return outcome === -1 ? 'changed' : 'drawn';
  }

  /** The published part of a done draw; null before it. */
  async drawRecord(showId: string): Promise<DrawRecord | null> {
    const keys = this.keysOf(showId);
    const [[, gate], [, drawKeys]] = ((await this.redis.multi().hmget(keys.gate, 'drawn_at', 'entries').get(keys.draw).exec()) ?? []) as [
      [unknown, [string | null, string | null]],
      [unknown, string | null],
    ];
    if (!gate[0]) return null;
    return { drawnAt: gate[0], entries: Number(gate[1] ?? 0), keys: drawKeys ? (JSON.parse(drawKeys) as string[]) : [] };
  }

  /** Whether anyone waits in the show's undrawn room. */
  async hasRoom(showId: string): Promise<boolean> {
    return (await this.redis.zcard(this.keysOf(showId).room)) > 0;
  }

  /** The head of the held line, in line order, with each request. */
  async head(showId: string, count: number): Promise<BookingJob[]> {
    const keys = this.keysOf(showId);
    const ids = await this.redis.zrange(keys.held, '0', String(count - 1));
    if (ids.length === 0) return [];
    const requests = await this.redis.hmget(keys.requests, ...ids);
    // A request that left between the two reads has no JSON: it is not released.
    return requests.flatMap((json) => (json ? [JSON.parse(json) as BookingJob] : []));
  }

  /** After the batch job carrying `requests` was added: they leave the line, and it is the show's batch in flight (see RELEASE_SCRIPT). */
  async released(showId: string, jobId: string, acceptedKey: string, reqKeys: readonly string[], ids: readonly string[]): Promise<number> {
    const keys = this.keysOf(showId);
    return (await this.scripts.showLineRelease(6 + reqKeys.length, acceptedKey, keys.held, keys.requests, keys.gate, keys.cum, keys.left, ...reqKeys, jobId, showId, ...ids)) as number;
  }

  /** The released batch `jobId` is decided (or never will be): the next may be released. False when it was not the one in flight. */
  async releaseDecided(showId: string, jobId: string): Promise<boolean> {
    return (await this.scripts.showLineReleaseDecided(1, this.keysOf(showId).gate, jobId)) === 1;
  }

  /** Unschedules the show if it is paused or has nothing left (atomic with the check). */
  async unscheduleIfIdle(showId: string): Promise<boolean> {
    const keys = this.keysOf(showId);
    return (await this.scripts.showLineUnschedule(4, keys.gate, keys.held, keys.room, this.dueKey, showId)) === 1;
  }

  /**
   * The show's opening moved (PATCH of sales_open_at): an undrawn room is drawn at the new time.
   * Without a room nothing waits, and the next admission records the time itself.
   */
  async rescheduleOpening(showId: string, salesOpenAt: number): Promise<void> {
    const keys = this.keysOf(showId);
    await this.scripts.showLineReschedule(3, keys.gate, keys.room, this.dueKey, showId, salesOpenAt);
  }

  /** Reschedules a show for later (its room opens at `at`). */
  async scheduleAt(showId: string, at: number): Promise<void> {
    await this.redis.zadd(this.dueKey, at, showId);
  }

  /** Takes a request out of the line for good (its CANCELLED row is in Postgres already). */
  async leave(showId: string, bookingId: string, reqKey: string): Promise<boolean> {
    const keys = this.keysOf(showId);
    return ((await this.scripts.showLineLeave(6, reqKey, keys.room, keys.held, keys.requests, keys.cum, keys.left, bookingId)) as number) > 0;
  }
}
