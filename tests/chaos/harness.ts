import { Queue, QueueEvents } from 'bullmq';
import { Redis } from 'ioredis';
import type pg from 'pg';
import { Agent, request } from 'undici';
import { afterAll, onTestFailed } from 'vitest';
import { bookingSeatsNotPointingBack, capacityByShow, lostRequests, seatsDisagreeingWithBookings, seatsInTwoBookings } from '../../bench/lib/audit.js';
import { createShow, generalAdmission } from '../../shared/booking/shows.js';
import type { Database } from '../../shared/db/client.js';
import { QUEUES } from '../../shared/queue/catalog.js';
import { RequestIndex } from '../../shared/queue/request-index.js';
import { createTestContext, type TestContext } from '../support/context.js';
import { recordFigures as writeFigures } from '../support/figures.js';
import { ProcessRegistry, serviceEnv, waitUntil } from '../support/processes.js';

/**
 * What every chaos scenario shares: its size (CI or full), a client that books the way a
 * well-behaved app does (an Idempotency-Key per booking, retries on 503 and connection errors,
 * honouring Retry-After), a paced load, the audit run after each fault, and the figures file.
 */

export const SCALE: 'ci' | 'full' = process.env.CHAOS_SCALE === 'full' ? 'full' : 'ci';
export const sized = <T>(sizes: { ci: T; full: T }): T => sizes[SCALE];

/** Writes a scenario's figures to test-results/reliability/chaos-<scenario>.json and prints them. */
export function recordFigures(scenario: string, figures: Record<string, unknown>): void {
  writeFigures(`chaos-${scenario}`, { scale: SCALE, ...figures });
}

export async function createGaShow(db: Database, seats: number, name = 'Chaos show'): Promise<{ id: string; seats: number }> {
  const show = await createShow(db, { name, startTime: new Date('2031-01-01T20:00:00Z'), layout: generalAdmission(seats) });
  return { id: show.id, seats };
}

// ---------------------------------------------------------------------------------------------
// Client

export type Acknowledged = { key: string; id: string; sentAt: number; receivedAt: number; target: string };
export type Answer = { status: number; retryAfter: string | undefined; body: string; sentAt: number; receivedAt: number };
export type BookingBody = { show_id: string; customer_email: string; seat_count?: number; seats?: string[] };

export type ClientStats = {
  /** Logical bookings started, acknowledged (202), and given up (no 202 before the deadline). */
  bookings: number;
  acknowledged: number;
  gaveUp: number;
  attempts: number;
  replayed: number;
  /** 503 with Retry-After: the documented "try again" answer. */
  unavailable: number;
  rateLimited: number;
  /** Any other 5xx (including a 503 without Retry-After): must stay 0. */
  serverErrors: number;
  clientErrors: number;
  /** Refused or reset connections and timeouts: no HTTP answer at all. */
  connectionErrors: number;
  /** The same Idempotency-Key answered with two different ids: must stay 0. */
  idMismatches: number;
};

/**
 * Books through a list of API base URLs (a stand-in for a load balancer: round robin, and the
 * next replica after a connection error). Every booking carries its own Idempotency-Key and is
 * retried with it until a 202 or the deadline, so a retry never makes a second booking.
 */
export class BookingClient {
  readonly acknowledged = new Map<string, Acknowledged>();
  readonly stats: ClientStats = {
    bookings: 0,
    acknowledged: 0,
    gaveUp: 0,
    attempts: 0,
    replayed: 0,
    unavailable: 0,
    rateLimited: 0,
    serverErrors: 0,
    clientErrors: 0,
    connectionErrors: 0,
    idMismatches: 0,
  };
  /** A few examples of answers that were neither 202 nor 503/429 with Retry-After. */
  readonly samples: string[] = [];
  /** A few examples of connection errors (counted separately: no HTTP answer at all). */
  readonly connectionSamples: string[] = [];
  /** Every HTTP answer (status, Retry-After, timing), for checks over a time window. */
  readonly answers: Answer[] = [];
  private readonly agent = new Agent({ connections: 128, keepAliveTimeout: 4_000 });
  private next = 0;

  constructor(
    private readonly targets: () => string[],
    private readonly options: { deadlineMs: number } = { deadlineMs: 120_000 },
  ) {}

  async book(key: string, body: BookingBody): Promise<Acknowledged | undefined> {
    this.stats.bookings += 1;
    const deadline = Date.now() + this.options.deadlineMs;
    let target = this.next++;
    for (let attempt = 1; Date.now() < deadline; attempt++) {
      const list = this.targets();
      const answer = await this.attempt(list[target % list.length]!, key, body);
      if (!answer) {
        target += 1; // a load balancer sends the retry to another replica
        await pause(Math.min(50 * attempt, 500));
        continue;
      }
      if (answer.status === 202) return this.acknowledged.get(key);
      const retryAfterSeconds = Number(answer.retryAfter);
      if (answer.status === 503 && answer.retryAfter && retryAfterSeconds > 0) {
        await pause(retryAfterSeconds * 1_000);
        continue;
      }
      if (answer.status === 429) {
        await pause((retryAfterSeconds || 1) * 1_000);
        continue;
      }
      if (answer.status >= 500) {
        await pause(200);
        continue;
      }
      return undefined;
    }
    this.stats.gaveUp += 1;
    return undefined;
  }

  /** One POST /booking, counted and classified; a 202 is recorded as acknowledged. */
  async attempt(base: string, key: string, body: BookingBody): Promise<Answer | undefined> {
    this.stats.attempts += 1;
    const sentAt = Date.now();
    let answer: Answer;
    try {
      const response = await request(`${base}/booking`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': key },
        body: JSON.stringify(body),
        dispatcher: this.agent,
        headersTimeout: 15_000,
        bodyTimeout: 15_000,
      });
      const text = await response.body.text();
      const retryAfter = response.headers['retry-after'];
      answer = {
        status: response.statusCode,
        retryAfter: Array.isArray(retryAfter) ? retryAfter[0] : retryAfter,
        body: text,
        sentAt,
        receivedAt: Date.now(),
      };
    } catch (error) {
      this.stats.connectionErrors += 1;
      const code = (error as { code?: string }).code ?? (error as Error).message;
      if (this.stats.connectionErrors <= 5) this.connectionSamples.push(`connection error: ${code}`);
      return undefined;
    }
    this.answers.push(answer);
    const hasRetryAfter = Number(answer.retryAfter) > 0;
    if (answer.status === 202) this.acknowledge(key, base, answer);
    else if (answer.status === 503 && hasRetryAfter) this.stats.unavailable += 1;
    else if (answer.status === 429) this.stats.rateLimited += 1;
    else {
      this.sample(`${answer.status} retry-after=${answer.retryAfter ?? '-'} ${answer.body.slice(0, 200)}`);
      if (answer.status >= 500) this.stats.serverErrors += 1;
      else this.stats.clientErrors += 1;
    }
    return answer;
  }

  async close(): Promise<void> {
    await this.agent.close();
  }

  private acknowledge(key: string, base: string, answer: Answer): void {
    const id = (JSON.parse(answer.body) as { id: string }).id;
    const previous = this.acknowledged.get(key);
    if (previous) {
      this.stats.replayed += 1;
      if (previous.id !== id) this.stats.idMismatches += 1;
      return;
    }
    this.acknowledged.set(key, { key, id, sentAt: answer.sentAt, receivedAt: answer.receivedAt, target: base });
    this.stats.acknowledged += 1;
  }

  private sample(text: string): void {
    if (this.samples.length < 20) this.samples.push(text);
  }
}

const pause = (ms: number) => new Promise((done) => setTimeout(done, ms));

/**
 * A paced stream of bookings: `ratePerSecond` starts per second by up to `concurrency` clients
 * at once, until `count` bookings were made or `stop()` returns true. Resolves when every
 * started booking has finished (acknowledged or given up).
 */
export async function runLoad(options: {
  client: BookingClient;
  body: (index: number) => BookingBody;
  ratePerSecond: number;
  concurrency: number;
  count?: number;
  stop?: () => boolean;
  keyPrefix?: string;
}): Promise<{ started: number; seconds: number }> {
  const start = Date.now();
  const keyPrefix = options.keyPrefix ?? `chaos-${start.toString(36)}`;
  let index = 0;
  const done = () => (options.count !== undefined && index >= options.count) || (options.stop?.() ?? false);
  const lane = async () => {
    while (!done()) {
      const mine = index++;
      const due = start + (mine * 1_000) / options.ratePerSecond;
      if (due > Date.now()) await pause(due - Date.now());
      await options.client.book(`${keyPrefix}-${mine}`, options.body(mine));
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, lane));
  return { started: index, seconds: (Date.now() - start) / 1_000 };
}

/**
 * A spike on top of the paced load: `count` bookings started together by `concurrency` clients,
 * so a fault injected while it runs finds many requests in flight. Resolves when all finished.
 */
export function spike(client: BookingClient, showIds: string[], tag: string, count = 200, concurrency = 100): Promise<unknown> {
  return runLoad({ client, body: mixedBodies(showIds, tag), ratePerSecond: 1_000_000, concurrency, count, keyPrefix: tag });
}

/** Best-available bookings of 1 or 2 seats spread over the shows, one customer per booking. */
export function mixedBodies(showIds: string[], runTag: string): (index: number) => BookingBody {
  return (index) => ({
    show_id: showIds[index % showIds.length]!,
    customer_email: `fan-${runTag}-${index}@example.com`,
    seat_count: 1 + (index % 4 === 0 ? 1 : 0),
  });
}

// ---------------------------------------------------------------------------------------------
// Audit

export type AuditReport = {
  acknowledged: number;
  decided: number;
  /** Acknowledged (202) requests with no booking row by the deadline: lost. */
  lost: number;
  /** A few lost ids with what Redis knows of their jobs, to diagnose a failure. */
  lostSample: Array<{ id: string; key: string; job: Record<string, string>; lists: string[] }>;
  /** Booking rows whose id was never acknowledged to the client. */
  unacknowledgedBookings: number;
  /** Idempotency keys with more than one booking. */
  duplicateBookings: number;
  /** Seats sold to two live bookings, plus live seats beyond a show's capacity. */
  oversold: number;
  /** Seats whose status or booking disagrees with the booking that should own them. */
  seatMismatches: number;
  /** Seats a live booking lists that do not point back at it with the matching status and label. */
  lostSeats: number;
  /** Holds still HELD though they lapsed before the last completed sweep started. */
  lapsedHolds: number;
  /** Whether two expiry sweeps completed after the decisions (within a minute). */
  sweepsSeen: boolean;
  /** BullMQ jobs that ended failed (exhausted retries or stalled too often). */
  failedJobs: number;
  statuses: Record<string, number>;
  failureReasons: Record<string, number>;
  decideSeconds: number;
};

export async function auditRun(options: {
  pool: pg.Pool;
  showIds: string[];
  acknowledged: Iterable<Acknowledged>;
  bookingQueue: Queue;
  maintenanceQueue: Queue;
  redis: Redis;
  decideTimeoutMs: number;
}): Promise<AuditReport> {
  const { pool, showIds } = options;
  const acked = [...options.acknowledged];
  const ids = acked.map((ack) => ack.id);
  const started = Date.now();

  // 1. Every acknowledged request reaches a decision (a bookings row).
  let decided = 0;
  await waitUntil(
    'every acknowledged booking to be decided',
    async () => {
      decided = ids.length - (await lostRequests(pool, ids)).violations;
      return decided === ids.length;
    },
    options.decideTimeoutMs,
    250,
  ).catch(() => {}); // reported as `lost` below
  const decideSeconds = (Date.now() - started) / 1_000;

  const lostSample: AuditReport['lostSample'] = [];
  if (decided < ids.length) {
    const found = await pool.query<{ id: string }>('SELECT id FROM bookings WHERE id = ANY($1::uuid[])', [ids]);
    const present = new Set(found.rows.map((row) => row.id));
    for (const ack of acked.filter((candidate) => !present.has(candidate.id)).slice(0, 5)) {
      lostSample.push({ id: ack.id, key: ack.key, ...(await describeJob(options.redis, options.bookingQueue, ack.id)) });
    }
  }

  const one = async (text: string, values: unknown[]) => (await pool.query<{ n: number }>(text, values)).rows[0]!.n;

  const unacknowledgedBookings = await one(
    'SELECT count(*)::int AS n FROM bookings WHERE show_id = ANY($1::uuid[]) AND NOT (id = ANY($2::uuid[]))',
    [showIds, ids],
  );
  const duplicateBookings = await one(
    `SELECT count(*)::int AS n FROM (
       SELECT idempotency_key FROM bookings WHERE show_id = ANY($1::uuid[]) AND idempotency_key IS NOT NULL
       GROUP BY idempotency_key HAVING count(*) > 1) AS d`,
    [showIds],
  );
  // The invariants' SQL is the bench audit's (bench/lib/audit.ts), counted here.
  const doubleSold = (await seatsInTwoBookings(pool, showIds)).violations;
  const overCapacity = (await capacityByShow(pool, showIds)).reduce((sum, show) => sum + Math.max(show.live_booking_seats - show.total_seats, 0), 0);
  const seatMismatches = (await seatsDisagreeingWithBookings(pool, showIds)).length;
  const lostSeats = (await bookingSeatsNotPointingBack(pool, showIds)).length;

  // 2. No hold outlives its expiry by more than a sweep: wait for two sweeps that started after
  //    now, then no hold that had lapsed before the later one started may still be HELD.
  const sweepsAfter = Date.now();
  const lastSweep = await waitUntil(
    'two expiry sweeps after the decisions',
    async () => {
      const jobs = await options.maintenanceQueue.getJobs(['completed'], 0, 20, false);
      const later = jobs.filter((job) => job.name === 'expire-holds' && (job.processedOn ?? 0) > sweepsAfter).sort((a, b) => b.processedOn! - a.processedOn!);
      return later.length >= 2 ? later[0]! : undefined;
    },
    60_000,
    200,
  ).catch(() => undefined);
  // Without two sweeps in a minute every hold that had lapsed when we started waiting counts.
  const sweepStartedAt = lastSweep ? lastSweep.processedOn! - 250 : sweepsAfter;
  const lapsedHolds = await one(
    `SELECT count(*)::int AS n FROM bookings
     WHERE show_id = ANY($1::uuid[]) AND status = 'HELD' AND hold_expires_at < to_timestamp($2::double precision / 1000)`,
    [showIds, sweepStartedAt],
  );

  const statuses: Record<string, number> = {};
  const failureReasons: Record<string, number> = {};
  const grouped = await pool.query<{ status: string; reason: string | null; n: number }>(
    `SELECT status, failure_reason AS reason, count(*)::int AS n FROM bookings
     WHERE show_id = ANY($1::uuid[]) GROUP BY 1, 2`,
    [showIds],
  );
  for (const row of grouped.rows) {
    statuses[row.status] = (statuses[row.status] ?? 0) + row.n;
    if (row.reason) failureReasons[row.reason] = (failureReasons[row.reason] ?? 0) + row.n;
  }

  return {
    acknowledged: ids.length,
    decided,
    lost: ids.length - decided,
    lostSample,
    unacknowledgedBookings,
    duplicateBookings,
    oversold: doubleSold + overCapacity,
    seatMismatches,
    lostSeats,
    lapsedHolds,
    sweepsSeen: lastSweep !== undefined,
    failedJobs: await options.bookingQueue.getFailedCount(),
    statuses,
    failureReasons,
    decideSeconds,
  };
}

/**
 * Where a lost request was last seen: its request index entry, its batch job's hash (without
 * the payload) and the queue lists that hold that job.
 */
async function describeJob(
  redis: Redis,
  queue: Queue,
  id: string,
): Promise<{ indexEntry: string | null; jobId: string | null; job: Record<string, string>; lists: string[] }> {
  const index = new RequestIndex(redis, queue);
  const indexEntry = await redis.get(index.keyOf(id));
  const jobId = await index.jobIdOf(id);
  if (!jobId) return { indexEntry, jobId, job: {}, lists: [] };
  const job = await redis.hgetall(queue.toKey(jobId));
  delete job.data;
  const lists: string[] = [];
  for (const name of ['wait', 'active', 'paused', 'prioritized', 'delayed', 'completed', 'failed'] as const) {
    const key = queue.keys[name];
    if (!key) continue;
    const type = await redis.type(key);
    const member =
      type === 'list' ? (await redis.lpos(key, jobId)) !== null : type === 'zset' ? (await redis.zscore(key, jobId)) !== null : false;
    if (member) lists.push(name);
  }
  return { indexEntry, jobId, job, lists };
}

/** The audit's promises, as one object so a failure shows every figure at once. */
export function auditViolations(report: AuditReport): Record<string, number> {
  return {
    lost: report.lost,
    unacknowledgedBookings: report.unacknowledgedBookings,
    duplicateBookings: report.duplicateBookings,
    oversold: report.oversold,
    seatMismatches: report.seatMismatches,
    lostSeats: report.lostSeats,
    lapsedHolds: report.lapsedHolds,
    sweepsSeen: report.sweepsSeen ? 1 : 0,
    failedJobs: report.failedJobs,
    processingErrors: report.failureReasons.PROCESSING_ERROR ?? 0,
  };
}

export const NO_VIOLATIONS = {
  lost: 0,
  unacknowledgedBookings: 0,
  duplicateBookings: 0,
  oversold: 0,
  seatMismatches: 0,
  lostSeats: 0,
  lapsedHolds: 0,
  sweepsSeen: 1,
  failedJobs: 0,
  processingErrors: 0,
};

/**
 * BullMQ connection options from a redis:// or rediss:// URL (BullMQ opens its own connections
 * from them, so it cannot take the URL itself). Everything the services read from the same URL
 * is kept: credentials, database number and TLS; otherwise the audit would look at another
 * database (or fail to authenticate) while the services write where the URL says.
 */
export function redisOptions(url: string): {
  host: string;
  port: number;
  username?: string;
  password?: string;
  db?: number;
  tls?: Record<string, never>;
  maxRetriesPerRequest: null;
} {
  const parsed = new URL(url);
  const db = parsed.pathname.replace(/^\//, '');
  return {
    host: parsed.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: Number(parsed.port || 6379),
    ...(parsed.username ? { username: decodeURIComponent(parsed.username) } : {}),
    ...(parsed.password ? { password: decodeURIComponent(parsed.password) } : {}),
    ...(db ? { db: Number(db) } : {}),
    ...(parsed.protocol === 'rediss:' ? { tls: {} } : {}),
    maxRetriesPerRequest: null,
  };
}

/** Collects a queue's events of one kind (e.g. 'stalled') with their job ids, from now on. */
export async function collectEvents(
  queueName: string,
  options: { redisUrl: string; prefix: string },
  event: 'stalled' | 'completed' | 'failed',
): Promise<{ ids: string[]; seen: Array<{ id: string; at: number }>; close: () => Promise<void> }> {
  const events = new QueueEvents(queueName, { connection: redisOptions(options.redisUrl), prefix: options.prefix });
  events.on('error', () => {});
  const ids: string[] = [];
  const seen: Array<{ id: string; at: number }> = [];
  events.on(event, ({ jobId }: { jobId: string }, eventId: string) => {
    ids.push(jobId);
    // The stream entry id starts with the Redis time (ms) at which the event was written.
    seen.push({ id: jobId, at: Number(eventId.split('-')[0]) || Date.now() });
  });
  await events.waitUntilReady();
  return { ids, seen, close: () => events.close() };
}

/** Call inside a test: if it fails, the services' recent logs are printed with the failure. */
export function printLogsOnFailure(world: World): void {
  onTestFailed(() => console.log(`[chaos] service logs at failure:\n${world.processes.tails()}`));
}

export type World = {
  ctx: TestContext;
  processes: ProcessRegistry;
  bookingQueue: Queue;
  maintenanceQueue: Queue;
  /** A plain connection to the services' Redis, for reading queue keys directly. */
  redis: Redis;
  redisUrl: string;
  /** Runs `step` once the world has closed: for what the services reach through (a proxy, a test-owned Redis). */
  afterClose: (step: () => Promise<unknown>) => void;
  close: () => Promise<void>;
};

/**
 * A scenario's world: its own database and queue prefix (createTestContext), a registry for
 * the service processes it starts (with `serviceOverrides` in their environment), and queue
 * handles for the audit. `redisUrl` points services and queues at a test-owned Redis.
 */
export async function createWorld(options: {
  serviceOverrides?: Record<string, string>;
  redisUrl?: string;
}): Promise<World> {
  const ctx = await createTestContext();
  const redisUrl = options.redisUrl ?? ctx.config.REDIS_URL;
  const processes = new ProcessRegistry(
    serviceEnv(ctx.config, {
      REDIS_URL: redisUrl,
      LOG_LEVEL: 'warn',
      DB_POOL_SIZE: '4',
      ...options.serviceOverrides,
    }),
  );
  const connection = redisOptions(redisUrl);
  const bookingQueue = new Queue(QUEUES.bookings, { connection, prefix: ctx.config.QUEUE_PREFIX });
  const maintenanceQueue = new Queue(QUEUES.maintenance, { connection, prefix: ctx.config.QUEUE_PREFIX });
  // A test-owned Redis may be down on purpose: the audit's handles wait for it quietly.
  for (const queue of [bookingQueue, maintenanceQueue]) queue.on('error', () => {});
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: null });
  redis.on('error', () => {});
  const afterwards: Array<() => Promise<unknown>> = [];
  return {
    ctx,
    processes,
    bookingQueue,
    maintenanceQueue,
    redis,
    redisUrl,
    afterClose: (step) => afterwards.push(step),
    close: async () => {
      await processes.stopAll();
      redis.disconnect();
      await Promise.allSettled([bookingQueue.close(), maintenanceQueue.close()]);
      await ctx.cleanup();
      while (afterwards.length > 0) await afterwards.shift()!();
    },
  };
}

/**
 * How a scenario file starts: `const world = await openWorld({...});` at the top; the world
 * closes when the file ends (the hook is registered here, so a leak still fails the file).
 */
export async function openWorld(options: Parameters<typeof createWorld>[0]): Promise<World> {
  const world = await createWorld(options);
  afterAll(() => world.close());
  return world;
}

/** auditRun on the world's database, queues and Redis: what each scenario checks after its fault. */
export function auditWorld(
  world: World,
  options: { showIds: string[]; acknowledged: Iterable<Acknowledged>; decideTimeoutMs: number },
): Promise<AuditReport> {
  return auditRun({
    pool: world.ctx.pool,
    bookingQueue: world.bookingQueue,
    maintenanceQueue: world.maintenanceQueue,
    redis: world.redis,
    ...options,
  });
}
