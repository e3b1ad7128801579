import { parseArgs, type ParseArgsConfig } from 'node:util';
import { z } from 'zod';
import { spreadOverWait, type SaleOpeningOptions } from './sale-opening.js';

/**
 * Command-line options of the bench's tools: node's util.parseArgs splits argv, a zod schema
 * checks and converts each flag (as shared/config.ts does for the environment), and a bad flag
 * is a UsageError naming itself. `npm run burst`'s options are here; run.ts and floor.ts use
 * the same parseFlags and field helpers.
 */

export type Arrival =
  | { kind: 'burst' }
  /** Open loop, the rate rising linearly from zero so that every request is sent within `seconds`. */
  | { kind: 'ramp'; seconds: number }
  /** Open loop at a constant rate. */
  | { kind: 'rate'; perSecond: number };

export type SectionSpec = { name: string; rows: number; seatsPerRow: number; priceCents: number };

export type ShowSource =
  | { kind: 'existing'; ids: string[] }
  | { kind: 'create'; count: number; seats: number }
  | { kind: 'create-sections'; count: number; sections: SectionSpec[] };

export type BurstOptions = {
  /** One or more base URLs of API replicas; the generator's connections are spread over them. */
  urls: string[];
  adminToken: string | undefined;
  shows: ShowSource;
  requests: number;
  concurrency: number;
  arrival: Arrival;
  seatCount: { min: number; max: number };
  specificSeatsRatio: number;
  /** Share of best-available requests sent with `waitlist: true` (they join the list when sold out). */
  waitlistRatio: number;
  section: string | null;
  confirmRatio: number;
  /** Of the holds not confirmed, the share cancelled; the others are left to lapse. */
  cancelShare: number;
  pollMs: number;
  pollConcurrency: number;
  /** Prefer: wait=N on each status poll (0: plain polls). */
  pollWaitSeconds: number;
  /** Prefer: wait=N on each booking request: its decision in the same answer (0: answered at acceptance, then polled). */
  submitWaitSeconds: number;
  /** Distinct customer emails; null gives every request its own. */
  customers: number | null;
  idempotencyKeys: boolean;
  maxRetries: number;
  /** Open every submit connection before the clock starts (a balancer's warm pool) instead of during the burst. */
  preconnect: boolean;
  /** Requests the generator sends itself (answered 404, nothing written) before the clock, to optimise its own code. */
  generatorWarmup: number;
  decisionTimeoutSeconds: number;
  json: string | null;
  html: string | null;
  databaseUrl: string | null;
  audit: boolean;
  auditGraceSeconds: number;
  redisUrl: string | null;
  queuePrefix: string;
  progress: boolean;
  seed: number;
  /** A scheduled sale: the created show opens this long after its creation (null: on sale at once). */
  sale: SaleOpeningOptions | null;
};

export class UsageError extends Error {
  override name = 'UsageError';
}

export const BURST_HELP = `Usage: npm run burst -- [options]

Reproduces the moment sales open against a running API, then audits the database.

Target
  --url URL                  API base URL, http:// (default http://127.0.0.1:3000); repeat it,
                             or give several comma-separated, to spread connections over API
                             replicas. No TLS: aim at the replicas or the balancer's plain port
  --admin-token TOKEN        admin token, needed to create shows (default $ADMIN_TOKEN)
  --show ID                  book an existing show (repeat for several shows)
  --create-show              create the show(s) first, with --seats N or --sections SPEC
  --seats N                  general admission seats per created show
  --sections SPEC            reserved seating, e.g. "VIP:2x10:9900,Floor:20x50:4900"
                             (name:ROWSxSEATS_PER_ROW[:price_cents], comma separated)
  --shows N                  how many shows to create (default 1); requests spread evenly

Load
  --requests N               booking requests to send (default 1000)
  --concurrency C            requests in flight at most (default 100)
  --arrival MODE             burst (all at once, default), ramp:SECONDS, rate:N (per second), or
                             with --sales-open-in, wait: spread evenly over the wait

Scheduled sale
  --sales-open-in SECONDS    create the show(s) with sales_open_at that far ahead (waiting room
                             open at once): the requests wait in the waiting room, the report
                             adds the opening (waiting-room size, opening to first and last
                             decision) and the audit checks the draw and the line order
  --max-overtakes N          overtakes the audit tolerates (default 0)
  --seat-count A-B           seats per request, uniform in A..B (default 1-1, or "2")
  --specific-seats-ratio R   share of requests naming specific adjacent seats (default 0)
  --section NAME             best-available requests ask for this section
  --waitlist-ratio R         share of best-available requests sent with "waitlist": true
                             (default 0): sold out, they join the show's waiting list; the
                             report counts them and the offers they got
  --customers N              distinct customer emails (default: one per request)
  --idempotency-keys         send an Idempotency-Key header with every booking
  --max-retries N            retries of a 429/503 answer, honouring Retry-After (default 30)
  --preconnect               open every connection (one GET /health each) before the clock
                             starts, as a load balancer's warm upstream pool would; by default
                             the burst opens them, as new clients do
  --generator-warmup N       before the clock, N requests the API answers 404 (bookings for a show
                             that does not exist, polls of unknown ids), so the tool's own code is
                             optimised when the burst starts (default 0)

After the decision
  --confirm-ratio R          share of holds confirmed (default 0); of the rest,
  --cancel-share R           this share is cancelled (default 0.5), the others left to lapse
  --poll-ms MS               least time between status polls of one request (default 1000);
                             the server's Retry-After is honoured when longer
  --poll-concurrency N       status polls and settle calls in flight at most (default 64)
  --poll-wait S              each status poll asks the API to wait up to S seconds for the
                             decision (Prefer: wait=S, at most 30; default 25); 0 polls plainly
  --submit-wait S            each booking request asks the API to wait up to S seconds for its
                             decision (Prefer: wait=S on POST /booking, at most 30; default 0):
                             one request per booking, polled only when the wait runs out; accept
                             latency then counts only the requests answered 202
  --decision-timeout S       give up waiting for decisions after S seconds (default 300)

Measuring and audit
  --redis-url URL            read the true queue depth (requests waiting) from Redis
                             (else it is estimated from the queue positions the API reports)
  --queue-prefix PREFIX      the API's QUEUE_PREFIX, with --redis-url (default ticket-rush)
  --database-url URL         Postgres for the audit (default $DATABASE_URL, else the local default)
  --no-audit                 skip the audit (the exit code is then 0 unless the run failed)
  --audit-grace S            tolerance for the "seats left AVAILABLE" check when holds are
                             released while the run goes on (default 2)
  --json FILE                write the whole report as JSON
  --html FILE                write a self-contained HTML report
  --no-progress              no live progress line
  --seed N                   random seed (default: random), for reproducible request mixes
  -h, --help                 this help

Exit code: 0 when the audit passes, 1 when it fails, 2 for bad options, 3 when the run itself failed.`;

type FlagSpec = NonNullable<ParseArgsConfig['options']>;
type FlagValues<S extends FlagSpec> = { [K in keyof S]?: S[K]['type'] extends 'boolean' ? boolean : S[K]['multiple'] extends true ? string[] : string };

/**
 * Splits argv with parseArgs (strict: an unknown flag or a missing value is refused) and checks
 * the values with `schema`, whose keys are the flag names; every problem is reported as
 * `--flag: problem`, one per line.
 */
export function parseFlags<S extends FlagSpec, T>(argv: string[], spec: S, schema: z.ZodType<T, FlagValues<S>>): T {
  let values: FlagValues<S>;
  try {
    values = parseArgs({ args: argv, options: spec, strict: true, allowPositionals: false }).values as FlagValues<S>;
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const parsed = schema.safeParse(values);
  if (!parsed.success) {
    throw new UsageError(parsed.error.issues.map((issue) => (issue.path.length > 0 ? `--${String(issue.path[0])}: ${issue.message}` : issue.message)).join('\n'));
  }
  return parsed.data;
}

/** A flag's text read by `read`, which throws a message naming what is wrong with it. */
function flag<T>(read: (text: string) => T) {
  return z.string().transform((text, ctx) => {
    try {
      return read(text);
    } catch (error) {
      ctx.addIssue({ code: 'custom', message: (error as Error).message });
      return z.NEVER;
    }
  });
}

export const whole = (min: number, max: number) =>
  flag((text) => {
    if (!/^\d+$/.test(text)) throw new Error(`"${text}" is not a whole number`);
    const value = Number(text);
    if (value < min || value > max) throw new Error(`must be between ${min} and ${max} (got ${value})`);
    return value;
  });

const ratio = flag((text) => {
  const value = Number(text);
  if (text.trim() === '' || !Number.isFinite(value) || value < 0 || value > 1) throw new Error(`must be a number from 0 to 1 (got "${text}")`);
  return value;
});

function urlText(text: string, schemes: RegExp): string {
  let parsed: URL;
  try {
    parsed = new URL(text);
  } catch {
    throw new Error(`"${text}" is not a URL`);
  }
  if (!schemes.test(parsed.protocol)) throw new Error(`unsupported scheme "${parsed.protocol}"`);
  return text.replace(/\/+$/, '');
}

export const url = (schemes: RegExp) => flag((text) => urlText(text, schemes));

export function parseArrival(text: string): Arrival {
  if (text === 'burst') return { kind: 'burst' };
  const match = /^(ramp|rate):(\d+(?:\.\d+)?)$/.exec(text);
  const value = match ? Number(match[2]) : NaN;
  if (!match || !(value > 0)) throw new Error(`use burst, ramp:SECONDS or rate:N (got "${text}")`);
  return match[1] === 'ramp' ? { kind: 'ramp', seconds: value } : { kind: 'rate', perSecond: value };
}

export function parseSeatCount(text: string): { min: number; max: number } {
  const match = /^(\d+)(?:-(\d+))?$/.exec(text);
  if (!match) throw new Error(`use N or A-B (got "${text}")`);
  const min = Number(match[1]);
  const max = Number(match[2] ?? match[1]);
  if (min < 1 || max < min || max > 100) throw new Error(`need 1 <= A <= B <= 100 (got "${text}")`);
  return { min, max };
}

export function parseSections(text: string): SectionSpec[] {
  const sections = text.split(',').map((part) => {
    const match = /^([A-Za-z0-9][A-Za-z0-9 _-]{0,31}):(\d+)x(\d+)(?::(\d+))?$/.exec(part.trim());
    if (!match) throw new Error(`"${part}" is not NAME:ROWSxSEATS[:PRICE_CENTS]`);
    const [, name, rows, perRow, price] = match as unknown as [string, string, string, string, string | undefined];
    return { name, rows: Number(rows), seatsPerRow: Number(perRow), priceCents: Number(price ?? 0) };
  });
  const names = new Set(sections.map((section) => section.name));
  if (names.size !== sections.length) throw new Error('section names must differ');
  return sections;
}

const SHOW_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const SPEC = {
  url: { type: 'string', multiple: true },
  'admin-token': { type: 'string' },
  show: { type: 'string', multiple: true },
  'create-show': { type: 'boolean' },
  seats: { type: 'string' },
  sections: { type: 'string' },
  shows: { type: 'string' },
  requests: { type: 'string' },
  concurrency: { type: 'string' },
  arrival: { type: 'string' },
  'seat-count': { type: 'string' },
  'specific-seats-ratio': { type: 'string' },
  'waitlist-ratio': { type: 'string' },
  section: { type: 'string' },
  customers: { type: 'string' },
  'idempotency-keys': { type: 'boolean' },
  'max-retries': { type: 'string' },
  preconnect: { type: 'boolean' },
  'generator-warmup': { type: 'string' },
  'confirm-ratio': { type: 'string' },
  'cancel-share': { type: 'string' },
  'poll-ms': { type: 'string' },
  'poll-concurrency': { type: 'string' },
  'poll-wait': { type: 'string' },
  'submit-wait': { type: 'string' },
  'decision-timeout': { type: 'string' },
  'redis-url': { type: 'string' },
  'queue-prefix': { type: 'string' },
  'database-url': { type: 'string' },
  'no-audit': { type: 'boolean' },
  'audit-grace': { type: 'string' },
  json: { type: 'string' },
  html: { type: 'string' },
  'no-progress': { type: 'boolean' },
  seed: { type: 'string' },
  'sales-open-in': { type: 'string' },
  'max-overtakes': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies FlagSpec;

const on = z.boolean().default(false);

/** Each flag on its own; the rules between flags (which show, the token, the audit) follow in parseBurstArgs. */
const BurstFlags = z.object({
  url: z.array(z.string()).default(['http://127.0.0.1:3000']).transform((list) => list.flatMap((text) => text.split(',')).map((text) => text.trim())).pipe(z.array(url(/^http:$/))),
  'admin-token': z.string().optional(),
  show: z.array(flag((id) => {
    if (!SHOW_ID.test(id)) throw new Error(`"${id}" is not a show id (UUID)`);
    return id;
  })).default([]),
  'create-show': on,
  seats: whole(1, 100_000).optional(),
  sections: flag(parseSections).optional(),
  shows: whole(1, 1_000).default(1),
  requests: whole(1, 10_000_000).default(1_000),
  concurrency: whole(1, 10_000).default(100),
  // 'wait' needs --sales-open-in and the request count, so parseBurstArgs resolves it.
  arrival: flag((text) => (text === 'wait' ? ('wait' as const) : parseArrival(text))).default({ kind: 'burst' }),
  'seat-count': flag(parseSeatCount).default({ min: 1, max: 1 }),
  'specific-seats-ratio': ratio.default(0),
  'waitlist-ratio': ratio.default(0),
  section: z.string().optional(),
  customers: whole(1, 10_000_000).optional(),
  'idempotency-keys': on,
  'max-retries': whole(0, 1_000).default(30),
  preconnect: on,
  'generator-warmup': whole(0, 10_000_000).default(0),
  'confirm-ratio': ratio.default(0),
  'cancel-share': ratio.default(0.5),
  'poll-ms': whole(10, 600_000).default(1_000),
  'poll-concurrency': whole(1, 10_000).default(64),
  'poll-wait': whole(0, 30).default(25),
  'submit-wait': whole(0, 30).default(0),
  'decision-timeout': whole(1, 86_400).default(300),
  'redis-url': url(/^rediss?:$/).optional(),
  'queue-prefix': z.string().default('ticket-rush'),
  'database-url': z.string().optional(),
  'no-audit': on,
  'audit-grace': whole(0, 3_600).default(2),
  json: z.string().optional(),
  html: z.string().optional(),
  'no-progress': on,
  seed: whole(0, 2 ** 32 - 1).optional(),
  'sales-open-in': whole(1, 86_400).optional(),
  'max-overtakes': whole(0, 10_000_000).default(0),
  help: on,
});

/** Parses argv (without node and script) into checked options; `env` supplies documented defaults. */
export function parseBurstArgs(argv: string[], env: NodeJS.ProcessEnv = {}): BurstOptions | 'help' {
  const flags = parseFlags(argv, SPEC, BurstFlags);
  if (flags.help) return 'help';

  let shows: ShowSource;
  if (flags.show.length > 0) {
    if (flags['create-show']) throw new UsageError('give --show or --create-show, not both');
    shows = { kind: 'existing', ids: flags.show };
  } else if (flags['create-show']) {
    if ((flags.seats === undefined) === (flags.sections === undefined)) throw new UsageError('--create-show needs either --seats N or --sections SPEC');
    shows =
      flags.seats !== undefined
        ? { kind: 'create', count: flags.shows, seats: flags.seats }
        : { kind: 'create-sections', count: flags.shows, sections: flags.sections! };
  } else {
    throw new UsageError('say which show: --show ID or --create-show --seats N');
  }

  const adminToken = flags['admin-token'] ?? env.ADMIN_TOKEN;
  if (shows.kind !== 'existing' && !adminToken) throw new UsageError('--create-show needs --admin-token (or ADMIN_TOKEN)');

  const opensIn = flags['sales-open-in'];
  if (opensIn !== undefined && shows.kind === 'existing') throw new UsageError('--sales-open-in creates its show: use it with --create-show');
  if (flags.arrival === 'wait' && opensIn === undefined) throw new UsageError('--arrival wait spreads requests over the wait of --sales-open-in SECONDS');
  const arrival: Arrival = flags.arrival === 'wait' ? spreadOverWait(flags.requests, opensIn!) : flags.arrival;

  const audit = !flags['no-audit'];
  let databaseUrl: string | null = null;
  if (audit) {
    try {
      databaseUrl = urlText(flags['database-url'] ?? env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/ticket_rush', /^postgres(ql)?:$/);
    } catch (error) {
      throw new UsageError(`--database-url: ${(error as Error).message}`);
    }
  }

  return {
    urls: flags.url,
    adminToken,
    shows,
    requests: flags.requests,
    concurrency: flags.concurrency,
    arrival,
    seatCount: flags['seat-count'],
    specificSeatsRatio: flags['specific-seats-ratio'],
    waitlistRatio: flags['waitlist-ratio'],
    section: flags.section ?? null,
    confirmRatio: flags['confirm-ratio'],
    cancelShare: flags['cancel-share'],
    pollMs: flags['poll-ms'],
    pollConcurrency: flags['poll-concurrency'],
    pollWaitSeconds: flags['poll-wait'],
    submitWaitSeconds: flags['submit-wait'],
    customers: flags.customers ?? null,
    idempotencyKeys: flags['idempotency-keys'],
    maxRetries: flags['max-retries'],
    preconnect: flags.preconnect,
    generatorWarmup: flags['generator-warmup'],
    decisionTimeoutSeconds: flags['decision-timeout'],
    json: flags.json ?? null,
    html: flags.html ?? null,
    databaseUrl,
    audit,
    auditGraceSeconds: flags['audit-grace'],
    redisUrl: flags['redis-url'] ?? null,
    queuePrefix: flags['queue-prefix'],
    progress: !flags['no-progress'],
    seed: flags.seed ?? Math.floor(Math.random() * 2 ** 31),
    sale: opensIn === undefined ? null : { opensInSeconds: opensIn, maxOvertakes: flags['max-overtakes'] },
  };
}
