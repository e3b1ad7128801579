import { isIP } from 'node:net';
import { z } from 'zod';
import { HOLD_SECONDS_RANGE, MAX_SEATS_PER_CUSTOMER_RANGE, WAITLIST_OFFER_SECONDS_RANGE, type IntRange } from './booking/limits.js';

/**
 * The one place configuration is read. Every process parses the environment once at startup
 * into a frozen, typed object and passes it down; nothing else reads `process.env`.
 */

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
/** A setting whose range is shared with the show's own value and Postgres (shared/booking/limits.ts). */
const intIn = (range: IntRange) => int(range.min, range.max);

/** proxy-addr's named ranges, accepted in a TRUST_PROXY list like addresses. */
const NAMED_RANGES = new Set(['loopback', 'linklocal', 'uniquelocal']);

function isAddressOrCidr(entry: string): boolean {
  if (NAMED_RANGES.has(entry)) return true;
  const [address = '', prefix, ...rest] = entry.split('/');
  const family = isIP(address);
  if (family === 0 || rest.length > 0) return false;
  return prefix === undefined || (/^\d{1,3}$/.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128));
}

/**
 * Which peers may set the client address through X-Forwarded-For: none (`false`), the last
 * `hops` entries (a count of load balancers every request passes through), or the listed
 * load balancers' addresses. `true` ("trust every hop") is refused: any client could then
 * pick its own address and so its own rate-limit bucket.
 */
export type TrustProxy = false | { hops: number } | { addresses: string[] };

const trustProxy = z.string().transform((raw, ctx): TrustProxy => {
  const value = raw.trim().toLowerCase();
  if (value === 'false' || value === '0') return false;
  if (value === 'true') {
    ctx.addIssue({
      code: 'custom',
      message:
        '"true" would trust every hop, so any client could spoof X-Forwarded-For; give the number of load balancers in front (e.g. 1) or their addresses/CIDRs (e.g. 10.0.0.0/8)',
    });
    return z.NEVER;
  }
  if (/^\d+$/.test(value)) {
    const hops = Number(value);
    if (hops > 10) ctx.addIssue({ code: 'custom', message: 'at most 10 hops' });
    return { hops };
  }
  const addresses = raw.split(',').map((entry) => entry.trim());
  const bad = addresses.filter((entry) => !isAddressOrCidr(entry));
  if (bad.length > 0) {
    ctx.addIssue({
      code: 'custom',
      message: `must be false, a hop count, or a comma-separated list of IP addresses/CIDRs (not ${bad.map((entry) => JSON.stringify(entry)).join(', ')})`,
    });
    return z.NEVER;
  }
  return { addresses };
});

/** Browser origins allowed to call the API cross-origin: `scheme://host[:port]`, comma-separated. */
const corsOrigins = z.string().transform((raw, ctx): string[] => {
  const origins = raw.split(',').map((entry) => entry.trim());
  const bad = origins.filter((origin) => {
    try {
      return new URL(origin).origin !== origin;
    } catch {
      return true;
    }
  });
  if (bad.length > 0) {
    ctx.addIssue({
      code: 'custom',
      message: `must be a comma-separated list of origins such as https://tickets.example.com (not ${bad.map((entry) => JSON.stringify(entry)).join(', ')})`,
    });
    return z.NEVER;
  }
  return origins;
});

/**
 * Webhook targets allowed in production although they are loopback, private or link-local:
 * host names (matched exactly, case-insensitive) and IP addresses or CIDRs, comma-separated.
 */
const webhookAllowedHosts = z.string().transform((raw, ctx): string[] => {
  const entries = raw.split(',').map((entry) => entry.trim().toLowerCase());
  const bad = entries.filter((entry) => !(isAddressOrCidr(entry) || /^[a-z0-9]([a-z0-9-]{0,62}\.)*[a-z0-9-]{1,63}$/.test(entry)));
  if (bad.length > 0) {
    ctx.addIssue({
      code: 'custom',
      message: `must be a comma-separated list of host names, IP addresses or CIDRs (not ${bad.map((entry) => JSON.stringify(entry)).join(', ')})`,
    });
    return z.NEVER;
  }
  return entries;
});

const EnvSchema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  // Unset: the local defaults on DEV_POSTGRES_PORT / DEV_REDIS_PORT (see localDatabaseUrl).
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// URL')
    .optional(),
  REDIS_URL: z
    .string()
    .regex(/^rediss?:\/\//, 'must be a redis:// or rediss:// URL')
    .optional(),
  // With DATABASE_URL / REDIS_URL unset, the local Postgres and Redis are expected on these
  // ports, and `npm start` starts them there when nothing answers (services/dev-services.ts),
  // keeping their data under DEV_DATA_DIR.
  DEV_POSTGRES_PORT: int(1, 65_535).default(5432),
  DEV_REDIS_PORT: int(1, 65_535).default(6379),
  DEV_DATA_DIR: z.string().min(1).default('.data'),
  // Redis Cluster instead of REDIS_URL's single node: seed nodes as host:port,host:port. The
  // QUEUE_PREFIX must then carry a hash tag, e.g. {ticket-rush}, so a queue's keys share a slot.
  REDIS_CLUSTER_NODES: z
    .string()
    .regex(/^[^\s,:]+:\d{1,5}(,[^\s,:]+:\d{1,5})*$/, 'must be a comma-separated list of host:port')
    .optional(),
  PORT: int(0, 65_535).default(3000),
  HOST: z.string().min(1).default('127.0.0.1'),
  // Requests a new API process sends itself before /ready says ready, so that a replica started
  // for a sale's opening meets the burst with its hot paths compiled (services/api/warmup.ts).
  API_WARMUP_REQUESTS: int(0, 1_000_000).default(20_000),
  ADMIN_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
  // Where the API saves a generated admin token when stderr is not a terminal (git-ignored).
  ADMIN_TOKEN_FILE: z.string().min(1).default('.ticket-rush/admin-token'),
  // Requests the API puts into one queue job at most (those accepted in the same event-loop turn).
  ENQUEUE_BATCH_SIZE: int(1, 1_000).default(100),
  // How long the API gathers requests into a job before sending it: 0 is one event-loop turn
  // (nothing waits); more trades that much accept latency for fewer, fuller jobs at moderate rates.
  ENQUEUE_LINGER_MS: int(0, 1_000).default(0),
  // Jobs (request batches) held at once per worker process; their requests are regrouped per
  // show into transactions of up to WORKER_BATCH_SIZE.
  WORKER_CONCURRENCY: int(1, 5_000).default(16),
  WORKER_BATCH_SIZE: int(1, 1_000).default(200),
  // The least time between the starts of two claim transactions of one show in one worker
  // while requests wait behind the first: under a steady stream each takes what arrived
  // meanwhile (fewer, fuller transactions); 0 starts the next as soon as the last commits.
  WORKER_BATCH_INTERVAL_MS: int(0, 1_000).default(10),
  // Requests per batch job released from a held line (waiting room, resume). A show's line is
  // decided one such batch at a time (no overtakes across worker processes), so each costs a
  // hand-off; larger batches mean fewer (the worker still decides WORKER_BATCH_SIZE at a time).
  LINE_RELEASE_BATCH_SIZE: int(1, 1_000).default(1_000),
  HOLD_SECONDS: intIn(HOLD_SECONDS_RANGE).default(120),
  // How long an offer from a show's waiting list holds its seats, unless the show sets its own.
  WAITLIST_OFFER_SECONDS: intIn(WAITLIST_OFFER_SECONDS_RANGE).default(900),
  EXPIRY_INTERVAL_SECONDS: int(1, 3_600).default(15),
  // How often the intake's line length (load shedding, positions) is set from the queue itself.
  INTAKE_RECONCILE_SECONDS: int(1, 3_600).default(30),
  MAX_SEATS_PER_BOOKING: int(1, 100).default(10),
  MAX_SEATS_PER_CUSTOMER: intIn(MAX_SEATS_PER_CUSTOMER_RANGE).default(10),
  MAX_QUEUE_DEPTH: int(1, 10_000_000).default(200_000),
  RATE_LIMIT_PER_MINUTE: int(0, 10_000_000).default(600),
  // GET /booking/:id/status counts here instead, per client IP (only while RATE_LIMIT_PER_MINUTE > 0).
  STATUS_RATE_LIMIT_PER_MINUTE: int(1, 10_000_000).default(6_000),
  // Live updates (server-sent events and status polls waiting under `Prefer: wait`) one API
  // process keeps open at once; beyond it a new one gets 503 + Retry-After.
  SSE_MAX_STREAMS: int(1, 1_000_000).default(10_000),
  // A comment line on every open stream this often, so proxies do not close idle ones.
  SSE_HEARTBEAT_SECONDS: int(1, 300).default(15),
  BODY_LIMIT_BYTES: int(1_024, 10_485_760).default(16_384),
  DB_POOL_SIZE: int(1, 500).default(10),
  QUEUE_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9_{}:.-]{1,64}$/, 'letters, digits, _ { } : . - only (at most 64)')
    .default('ticket-rush'),
  SHUTDOWN_TIMEOUT_SECONDS: int(1, 600).default(25),
  TRUST_PROXY: trustProxy.default(false),
  // Unset: no CORS headers, browsers allow only same-origin pages to read answers.
  CORS_ORIGINS: corsOrigins.default([]),
  // Each worker process serves its Prometheus metrics here; 0 disables. Several worker
  // processes on one host need one port each.
  WORKER_METRICS_PORT: int(0, 65_535).default(9465),
  // Unset: /metrics is open like /health (scrapers rarely carry tokens; keep it off the public
  // network). Set: scrapers must send Authorization: Bearer <METRICS_TOKEN>.
  METRICS_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
  // The API sheds load (503 + Retry-After) while its mean event-loop delay exceeds this; 0 disables.
  MAX_EVENT_LOOP_DELAY_MS: int(0, 60_000).default(1_000),
  // Webhooks (shared/webhooks/). Outside production any http(s) target is allowed, for local receivers.
  WEBHOOK_ALLOWED_HOSTS: webhookAllowedHosts.default([]),
  // One delivery attempt gives up after this long without a full answer (counts as a failure).
  WEBHOOK_TIMEOUT_MS: int(100, 60_000).default(10_000),
  // Retries with exponential backoff from BASE to MAX (with jitter) for this long after the
  // event, then the delivery is marked FAILED.
  WEBHOOK_RETRY_WINDOW_SECONDS: int(1, 7 * 86_400).default(86_400),
  WEBHOOK_RETRY_BASE_MS: int(10, 3_600_000).default(5_000),
  WEBHOOK_RETRY_MAX_MS: int(100, 86_400_000).default(3_600_000),
  // How often the relay looks in the outbox for deliveries that are due, and how many it takes
  // per look at most (one batch job): together they cap the relay's rate, and so its share of
  // the machine during a sale (deliveries lag a burst rather than slow it).
  WEBHOOK_RELAY_INTERVAL_MS: int(50, 60_000).default(1_000),
  WEBHOOK_RELAY_BATCH: int(1, 10_000).default(500),
  // ...and how many while booking requests are being decided (a sale is on): sending competes
  // with deciding for the worker's event loop and the cores; 0 holds deliveries until it ends.
  WEBHOOK_RELAY_BUSY_BATCH: int(0, 10_000).default(20),
  // Webhook requests one batch has in flight at once (a worker process runs two batches at once).
  WEBHOOK_CONCURRENCY: int(1, 1_000).default(16),
  // Outbox events whose deliveries are all settled are deleted this long after the event (with
  // their deliveries); longer than the retry window, so nothing is pruned while still retried.
  WEBHOOK_RETENTION_HOURS: int(1, 24 * 366).default(72),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

export type Config = Readonly<Omit<z.infer<typeof EnvSchema>, 'DATABASE_URL' | 'REDIS_URL'> & { DATABASE_URL: string; REDIS_URL: string }>;

/** DATABASE_URL when it is unset: the local Postgres, trust auth, database ticket_rush. */
export const localDatabaseUrl = (port: number): string => `postgres://postgres@127.0.0.1:${port}/ticket_rush`;
/** REDIS_URL when it is unset. */
export const localRedisUrl = (port: number): string => `redis://127.0.0.1:${port}`;

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Parses an environment (default: this process's) into a frozen Config; throws ConfigError naming each bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  // Empty strings mean "unset": docker compose and shells often pass `VAR=` through.
  const present = Object.fromEntries(
    Object.keys(EnvSchema.shape)
      .filter((key) => env[key] !== undefined && env[key] !== '')
      .map((key) => [key, env[key]]),
  );
  const parsed = EnvSchema.safeParse(present);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `  ${issue.path.join('.')}: ${issue.message}`);
    throw new ConfigError(`Invalid configuration:\n${problems.join('\n')}`);
  }
  if (parsed.data.REDIS_CLUSTER_NODES && !/\{[^}]+\}/.test(parsed.data.QUEUE_PREFIX)) {
    throw new ConfigError(
      'Invalid configuration:\n  QUEUE_PREFIX: must contain a hash tag such as {ticket-rush} when REDIS_CLUSTER_NODES is set',
    );
  }
  const { DATABASE_URL, REDIS_URL, ...rest } = parsed.data;
  return Object.freeze({
    ...rest,
    DATABASE_URL: DATABASE_URL ?? localDatabaseUrl(rest.DEV_POSTGRES_PORT),
    REDIS_URL: REDIS_URL ?? localRedisUrl(rest.DEV_REDIS_PORT),
  });
}
