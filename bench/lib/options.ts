import { parseArgs } from 'node:util';

/**
 * Command-line options of `npm run burst`. Parsed with node's own util.parseArgs (no extra
 * dependency) and validated here, so the rest of the tool works with checked, typed values.
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
  section: string | null;
  confirmRatio: number;
  /** Of the holds not confirmed, the share cancelled; the others are left to lapse. */
  cancelShare: number;
  pollMs: number;
  pollConcurrency: number;
  /** Distinct customer emails; null gives every request its own. */
  customers: number | null;
  idempotencyKeys: boolean;
  maxRetries: number;
  /** Open every submit connection before the clock starts (a balancer's warm pool) instead of during the burst. */
  preconnect: boolean;
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
  --arrival MODE             burst (all at once, default), ramp:SECONDS or rate:N (per second)
  --seat-count A-B           seats per request, uniform in A..B (default 1-1, or "2")
  --specific-seats-ratio R   share of requests naming specific adjacent seats (default 0)
  --section NAME             best-available requests ask for this section
  --customers N              distinct customer emails (default: one per request)
  --idempotency-keys         send an Idempotency-Key header with every booking
  --max-retries N            retries of a 429/503 answer, honouring Retry-After (default 30)
  --preconnect               open every connection (one GET /health each) before the clock
                             starts, as a load balancer's warm upstream pool would; by default
                             the burst opens them, as new clients do

After the decision
  --confirm-ratio R          share of holds confirmed (default 0); of the rest,
  --cancel-share R           this share is cancelled (default 0.5), the others left to lapse
  --poll-ms MS               least time between status polls of one request (default 1000);
                             the server's Retry-After is honoured when longer
  --poll-concurrency N       status polls and settle calls in flight at most (default 64)
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
  section: { type: 'string' },
  customers: { type: 'string' },
  'idempotency-keys': { type: 'boolean' },
  'max-retries': { type: 'string' },
  preconnect: { type: 'boolean' },
  'confirm-ratio': { type: 'string' },
  'cancel-share': { type: 'string' },
  'poll-ms': { type: 'string' },
  'poll-concurrency': { type: 'string' },
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
  help: { type: 'boolean', short: 'h' },
} as const;

export function integer(name: string, text: string | undefined, fallback: number, min: number, max: number): number {
  if (text === undefined) return fallback;
  if (!/^\d+$/.test(text)) throw new UsageError(`--${name}: "${text}" is not a whole number`);
  const value = Number(text);
  if (value < min || value > max) throw new UsageError(`--${name}: must be between ${min} and ${max} (got ${value})`);
  return value;
}

function ratio(name: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (text.trim() === '' || !Number.isFinite(value) || value < 0 || value > 1) {
    throw new UsageError(`--${name}: must be a number from 0 to 1 (got "${text}")`);
  }
  return value;
}

function url(name: string, text: string, schemes: RegExp): string {
  let parsed: URL;
  try {
    parsed = new URL(text);
  } catch {
    throw new UsageError(`--${name}: "${text}" is not a URL`);
  }
  if (!schemes.test(parsed.protocol)) throw new UsageError(`--${name}: unsupported scheme "${parsed.protocol}"`);
  return text.replace(/\/+$/, '');
}

export function parseArrival(text: string): Arrival {
  if (text === 'burst') return { kind: 'burst' };
  const match = /^(ramp|rate):(\d+(?:\.\d+)?)$/.exec(text);
  const value = match ? Number(match[2]) : NaN;
  if (!match || !(value > 0)) throw new UsageError(`--arrival: use burst, ramp:SECONDS or rate:N (got "${text}")`);
  return match[1] === 'ramp' ? { kind: 'ramp', seconds: value } : { kind: 'rate', perSecond: value };
}

export function parseSeatCount(text: string): { min: number; max: number } {
  const match = /^(\d+)(?:-(\d+))?$/.exec(text);
  if (!match) throw new UsageError(`--seat-count: use N or A-B (got "${text}")`);
  const min = Number(match[1]);
  const max = Number(match[2] ?? match[1]);
  if (min < 1 || max < min || max > 100) throw new UsageError(`--seat-count: need 1 <= A <= B <= 100 (got "${text}")`);
  return { min, max };
}

export function parseSections(text: string): SectionSpec[] {
  const sections = text.split(',').map((part) => {
    const match = /^([A-Za-z0-9][A-Za-z0-9 _-]{0,31}):(\d+)x(\d+)(?::(\d+))?$/.exec(part.trim());
    if (!match) throw new UsageError(`--sections: "${part}" is not NAME:ROWSxSEATS[:PRICE_CENTS]`);
    const [, name, rows, perRow, price] = match as unknown as [string, string, string, string, string | undefined];
    return { name, rows: Number(rows), seatsPerRow: Number(perRow), priceCents: Number(price ?? 0) };
  });
  const names = new Set(sections.map((section) => section.name));
  if (names.size !== sections.length) throw new UsageError('--sections: section names must differ');
  return sections;
}

/** Parses argv (without node and script) into checked options; `env` supplies documented defaults. */
export function parseBurstArgs(argv: string[], env: NodeJS.ProcessEnv = {}): BurstOptions | 'help' {
  let values: ReturnType<typeof parseArgs<{ options: typeof SPEC }>>['values'];
  try {
    ({ values } = parseArgs({ args: argv, options: SPEC, strict: true, allowPositionals: false }));
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  if (values.help) return 'help';

  const existing = values.show ?? [];
  const createCount = integer('shows', values.shows, 1, 1, 1_000);
  let shows: ShowSource;
  if (existing.length > 0) {
    if (values['create-show']) throw new UsageError('give --show or --create-show, not both');
    for (const id of existing) {
      if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(id)) throw new UsageError(`--show: "${id}" is not a show id (UUID)`);
    }
    shows = { kind: 'existing', ids: existing };
  } else if (values['create-show']) {
    if ((values.seats === undefined) === (values.sections === undefined)) {
      throw new UsageError('--create-show needs either --seats N or --sections SPEC');
    }
    shows =
      values.seats !== undefined
        ? { kind: 'create', count: createCount, seats: integer('seats', values.seats, 0, 1, 100_000) }
        : { kind: 'create-sections', count: createCount, sections: parseSections(values.sections!) };
  } else {
    throw new UsageError('say which show: --show ID or --create-show --seats N');
  }

  const adminToken = values['admin-token'] ?? env.ADMIN_TOKEN;
  if (shows.kind !== 'existing' && !adminToken) throw new UsageError('--create-show needs --admin-token (or ADMIN_TOKEN)');

  const noAudit = values['no-audit'] ?? false;
  const databaseUrl = noAudit
    ? null
    : url('database-url', values['database-url'] ?? env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/ticket_rush', /^postgres(ql)?:$/);

  return {
    urls: (values.url ?? ['http://127.0.0.1:3000']).flatMap((text) => text.split(',')).map((text) => url('url', text.trim(), /^http:$/)),
    adminToken,
    shows,
    requests: integer('requests', values.requests, 1_000, 1, 10_000_000),
    concurrency: integer('concurrency', values.concurrency, 100, 1, 10_000),
    arrival: parseArrival(values.arrival ?? 'burst'),
    seatCount: parseSeatCount(values['seat-count'] ?? '1'),
    specificSeatsRatio: ratio('specific-seats-ratio', values['specific-seats-ratio'], 0),
    section: values.section ?? null,
    confirmRatio: ratio('confirm-ratio', values['confirm-ratio'], 0),
    cancelShare: ratio('cancel-share', values['cancel-share'], 0.5),
    pollMs: integer('poll-ms', values['poll-ms'], 1_000, 10, 600_000),
    pollConcurrency: integer('poll-concurrency', values['poll-concurrency'], 64, 1, 10_000),
    customers: values.customers === undefined ? null : integer('customers', values.customers, 0, 1, 10_000_000),
    idempotencyKeys: values['idempotency-keys'] ?? false,
    maxRetries: integer('max-retries', values['max-retries'], 30, 0, 1_000),
    preconnect: values.preconnect ?? false,
    decisionTimeoutSeconds: integer('decision-timeout', values['decision-timeout'], 300, 1, 86_400),
    json: values.json ?? null,
    html: values.html ?? null,
    databaseUrl,
    audit: !noAudit,
    auditGraceSeconds: integer('audit-grace', values['audit-grace'], 2, 0, 3_600),
    redisUrl: values['redis-url'] === undefined ? null : url('redis-url', values['redis-url'], /^rediss?:$/),
    queuePrefix: values['queue-prefix'] ?? 'ticket-rush',
    progress: !(values['no-progress'] ?? false),
    seed: integer('seed', values.seed, Math.floor(Math.random() * 2 ** 31), 0, 2 ** 32 - 1),
  };
}
