import { z } from 'zod';

/**
 * The one place configuration is read. Every process parses the environment once at startup
 * into a frozen, typed object and passes it down; nothing else reads `process.env`.
 */

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

const booleanFlag = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((value) => value === 'true' || value === '1' || value === 'yes');

const EnvSchema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// URL')
    .default('postgres://postgres@127.0.0.1:5432/ticket_rush'),
  REDIS_URL: z
    .string()
    .regex(/^rediss?:\/\//, 'must be a redis:// or rediss:// URL')
    .default('redis://127.0.0.1:6379'),
  // Redis Cluster instead of REDIS_URL's single node: seed nodes as host:port,host:port. The
  // QUEUE_PREFIX must then carry a hash tag, e.g. {ticket-rush}, so a queue's keys share a slot.
  REDIS_CLUSTER_NODES: z
    .string()
    .regex(/^[^\s,:]+:\d{1,5}(,[^\s,:]+:\d{1,5})*$/, 'must be a comma-separated list of host:port')
    .optional(),
  PORT: int(0, 65_535).default(3000),
  HOST: z.string().min(1).default('127.0.0.1'),
  ADMIN_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
  // Requests the API puts into one queue job at most (those accepted in the same event-loop turn).
  ENQUEUE_BATCH_SIZE: int(1, 1_000).default(100),
  // Jobs (request batches) held at once per worker process; their requests are regrouped per
  // show into transactions of up to WORKER_BATCH_SIZE.
  WORKER_CONCURRENCY: int(1, 5_000).default(16),
  WORKER_BATCH_SIZE: int(1, 1_000).default(200),
  HOLD_SECONDS: int(1, 86_400).default(120),
  EXPIRY_INTERVAL_SECONDS: int(1, 3_600).default(15),
  // How often the intake's line length (load shedding, positions) is set from the queue itself.
  INTAKE_RECONCILE_SECONDS: int(1, 3_600).default(30),
  MAX_SEATS_PER_BOOKING: int(1, 100).default(10),
  MAX_SEATS_PER_CUSTOMER: int(1, 1_000).default(10),
  MAX_QUEUE_DEPTH: int(1, 10_000_000).default(200_000),
  RATE_LIMIT_PER_MINUTE: int(0, 10_000_000).default(600),
  BODY_LIMIT_BYTES: int(1_024, 10_485_760).default(16_384),
  DB_POOL_SIZE: int(1, 500).default(10),
  QUEUE_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9_{}:.-]{1,64}$/, 'letters, digits, _ { } : . - only (at most 64)')
    .default('ticket-rush'),
  SHUTDOWN_TIMEOUT_SECONDS: int(1, 600).default(25),
  TRUST_PROXY: booleanFlag.default(false),
  // Each worker process serves its Prometheus metrics here; 0 disables. Several worker
  // processes on one host need one port each.
  WORKER_METRICS_PORT: int(0, 65_535).default(9465),
  // Unset: /metrics is open like /health (scrapers rarely carry tokens; keep it off the public
  // network). Set: scrapers must send Authorization: Bearer <METRICS_TOKEN>.
  METRICS_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
  // The API sheds load (503 + Retry-After) while its mean event-loop delay exceeds this; 0 disables.
  MAX_EVENT_LOOP_DELAY_MS: int(0, 60_000).default(1_000),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

export type Config = Readonly<z.infer<typeof EnvSchema>>;

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
  return Object.freeze(parsed.data);
}
