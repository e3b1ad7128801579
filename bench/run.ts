import os from 'node:os';
import { mkdir, readdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import pg from 'pg';
import { recreateDatabase } from './lib/database.js';
import { checkoutBaseline, renderComparison, type Pair } from './lib/baseline.js';
import { explainClaims } from './lib/explain.js';
import { HttpClient } from './lib/http.js';
import { describeMachine } from './lib/machine.js';
import { z } from 'zod';
import { parseFlags, whole, type BurstOptions } from './lib/options.js';
import { writeReportFiles } from './lib/output.js';
import { runPgbench, type PgbenchResult } from './lib/pgbench.js';
import { prepareShows } from './lib/plan.js';
import { formatProfile, summariseProfile } from './lib/profile.js';
import { formatReport } from './lib/report.js';
import { writeResults, type BenchSettings, type ScenarioResult } from './lib/results-md.js';
import { runBurst, type BurstHooks } from './lib/run-burst.js';
import { OPEN_LOOP_TARGET, SCENARIO_NAMES, scenarios, type Scenario, type ScenarioName } from './lib/scenarios.js';
import { SeatMapReaders, formatSeatReaders } from './lib/seat-readers.js';
import { freePort, migrateWith, startServices, type RunningServices } from './lib/services.js';
import { startWebhookSink } from './lib/webhook-sink.js';

/**
 * Everything shares the machine's cores here (API, Redis, Postgres, the generator): each extra
 * worker process adds BullMQ overhead without adding cores. On 2 cores one worker measured
 * faster than two (bench/RESULTS.md), so the default leaves one core to the rest.
 */
const DEFAULT_WORKERS = Math.max(1, os.availableParallelism() - 1);
import { deleteKeysMatching } from '../shared/redis.js';
import { SystemMonitor } from './lib/system-monitor.js';

/**
 * `npm run bench`: the standard scenarios end to end on this machine. Recreates a dedicated
 * database, measures pgbench's simple-update TPS on the same Postgres, starts the API and N
 * worker processes, runs the scenarios with the burst tool, and writes bench/RESULTS.md.
 */

const HELP = `Usage: npm run bench -- [options]

  --scenario a|b|c|d|e|drain  run only these scenarios (repeat; default all six). drain: the requests of (a)
                       queued with no worker running, then the workers start (on services of its own)
  --apis N             API replicas, each on its own port; the generator spreads its connections over them (default 1)
  --workers N          worker processes (default: cores - 1, at least 1; measured best on 2 cores)
  --concurrency C      WORKER_CONCURRENCY (batch jobs) per worker process (default 16, as the service)
  --enqueue-batch N    ENQUEUE_BATCH_SIZE: requests per queue job at most (default 100, as the service)
  --enqueue-linger MS  ENQUEUE_LINGER_MS: how long the API gathers a job (default 0, as the service: one event-loop turn)
  --api-warmup N       API_WARMUP_REQUESTS: requests each API sends itself before it is ready (default 20000, as the
                       service; 0 meets the burst with an API that has run none of its code yet)
  --batch-size N       WORKER_BATCH_SIZE (default 200)
  --rate-limited       the API's per-client rate limits on, set too high to refuse anything: each request pays
                       the limiter's Redis count as in production (by default the limiter is off: one generator
                       address sends everything)
  --submit-wait S      each booking request asks for its decision in the same answer (Prefer: wait=S on
                       POST /booking, at most 30; default 0: answered 202 at acceptance, then polled)
  --batch-interval MS  WORKER_BATCH_INTERVAL_MS: least time between a show's transactions while requests wait (default 10, as the service)
  --db-pool N          DB_POOL_SIZE of the API and each worker (default 10)
  --in-flight N        generator requests in flight (default: the scenario's, 500)
  --poll-ms MS         least time between status polls of one request (default 1000)
  --warmup N           before the scenarios, N requests shaped like (a) on a show of their own, so the
                       services' code is optimised as in a long-running deployment (default 0: cold)
  --generator-warmup N before each scenario's clock, the generator sends N requests the API answers 404
                       (a show that does not exist, unknown ids) so its own code is optimised when the
                       measured requests go out (default 10000; 0 measures with a cold generator, whose
                       lateness counts inside open-loop accept latency)
  --new-connections    each scenario's burst opens its connections as it starts, as new clients would;
                       by default they are opened (one GET /health each) before its clock starts, as a
                       balancer's warm upstream pool would be (docs/OPERATIONS.md, Scaling the API)
  --seat-readers N     during each burst, N clients read the seat map of a 100,000-seat show in a loop
                       (gzip, no If-None-Match); compare booking latency with a run without (default 0)
  --rate N             scenario (d)'s offered rate, requests per second for 20 s (default 3000, issue 16's open loop)
  --quick              every size divided by ten, short pgbench: a smoke test
  --profile            --cpu-prof the API and the first worker; summaries go into the results
  --no-pgbench         skip the pgbench measurement
  --webhook            register a webhook for every event type, received by a loopback sink that answers 204:
                       the booking path with the outbox written and the relay sending (compare with a run without,
                       or with --baseline, which registers it on both builds)
  --baseline REF       A/B: check REF out under .bench/ (its own database, migrated by its own code) and run the
                       scenarios on this tree (A) and REF (B) in turn, --rounds times, each run on fresh services;
                       reports each figure's ratio A/B (median, min-max). Writes no RESULTS.md section
  --candidate REF      with --baseline: A is REF's product instead of this tree's (both checked out under .bench/),
                       to measure one past change against its parent: --candidate C --baseline C^
  --rounds N           rounds with --baseline, A B then B A alternately (default 4: an even number cancels the order)
  --results FILE       where to write the results (default bench/RESULTS.md; bench/out/RESULTS.quick.md with --quick;
                       with --baseline, baseline.md in the run's folder under bench/out/)
  --database-url URL   the bench database, dropped and recreated (default postgres://postgres@127.0.0.1:5432/ticket_rush_bench)
  --redis-url URL      Redis (default redis://127.0.0.1:6379)
  --log-level LEVEL    LOG_LEVEL of the services (default warn)
  -h, --help`;

const FLAGS = {
  scenario: { type: 'string', multiple: true },
  apis: { type: 'string' },
  workers: { type: 'string' },
  concurrency: { type: 'string' },
  'enqueue-batch': { type: 'string' },
  'enqueue-linger': { type: 'string' },
  'api-warmup': { type: 'string' },
  'batch-interval': { type: 'string' },
  'rate-limited': { type: 'boolean' },
  'submit-wait': { type: 'string' },
  'batch-size': { type: 'string' },
  'db-pool': { type: 'string' },
  'in-flight': { type: 'string' },
  'poll-ms': { type: 'string' },
  warmup: { type: 'string' },
  'new-connections': { type: 'boolean' },
  'generator-warmup': { type: 'string' },
  'seat-readers': { type: 'string' },
  rate: { type: 'string' },
  quick: { type: 'boolean' },
  profile: { type: 'boolean' },
  'no-pgbench': { type: 'boolean' },
  webhook: { type: 'boolean' },
  results: { type: 'string' },
  'database-url': { type: 'string' },
  'redis-url': { type: 'string' },
  'log-level': { type: 'string' },
  baseline: { type: 'string' },
  candidate: { type: 'string' },
  rounds: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

const BenchFlags = z.object({
  scenario: z
    .array(z.string())
    .default([...SCENARIO_NAMES])
    .transform((list) => list.flatMap((s) => s.split(',')))
    .pipe(z.array(z.enum(SCENARIO_NAMES, { error: (issue) => `"${String(issue.input)}" is not one of ${SCENARIO_NAMES.join(', ')}` })))
    .transform((chosen) => [...new Set(chosen)].sort()),
  apis: whole(1, 64).default(1),
  workers: whole(1, 64).default(DEFAULT_WORKERS),
  concurrency: whole(1, 5_000).default(16),
  'enqueue-batch': whole(1, 1_000).default(100),
  'enqueue-linger': whole(0, 1_000).default(0),
  'api-warmup': whole(0, 1_000_000).default(20_000),
  'batch-interval': whole(0, 1_000).default(10),
  'rate-limited': z.boolean().default(false),
  'submit-wait': whole(0, 30).default(0),
  'batch-size': whole(1, 1_000).default(200),
  'db-pool': whole(1, 500).default(10),
  'in-flight': whole(1, 10_000).optional(),
  'poll-ms': whole(10, 600_000).default(1_000),
  warmup: whole(0, 10_000_000).default(0),
  'new-connections': z.boolean().default(false),
  'generator-warmup': whole(0, 10_000_000).default(10_000),
  'seat-readers': whole(0, 1_000).default(0),
  rate: whole(1, 100_000).default(OPEN_LOOP_TARGET.perSecond),
  quick: z.boolean().default(false),
  profile: z.boolean().default(false),
  'no-pgbench': z.boolean().default(false),
  webhook: z.boolean().default(false),
  results: z.string().optional(),
  'database-url': z.string().default('postgres://postgres@127.0.0.1:5432/ticket_rush_bench'),
  'redis-url': z.string().default('redis://127.0.0.1:6379'),
  'log-level': z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], { error: (issue) => `"${String(issue.input)}" is not a pino level` }).default('warn'),
  baseline: z.string().min(1).optional(),
  candidate: z.string().min(1).optional(),
  rounds: whole(1, 50).default(4),
  help: z.boolean().default(false),
})
  .refine((flags) => !(flags.baseline && flags.profile), { message: '--profile and --baseline: profile one build at a time', path: ['profile'] })
  .refine((flags) => !flags.candidate || flags.baseline, { message: '--candidate needs --baseline: it names the A of an A/B', path: ['candidate'] });

/** Requests per minute per client that no run reaches (the config's ceiling). */
const UNREACHED_RATE_LIMIT = 10_000_000;

function parse(argv: string[]) {
  const flags = parseFlags(argv, FLAGS, BenchFlags);
  if (flags.help) return null;
  return {
    scenarios: flags.scenario,
    apis: flags.apis,
    workers: flags.workers,
    concurrency: flags.concurrency,
    enqueueBatch: flags['enqueue-batch'],
    enqueueLinger: flags['enqueue-linger'],
    apiWarmup: flags['api-warmup'],
    batchSize: flags['batch-size'],
    batchInterval: flags['batch-interval'],
    rateLimited: flags['rate-limited'],
    submitWait: flags['submit-wait'],
    dbPool: flags['db-pool'],
    inFlight: flags['in-flight'] ?? null,
    pollMs: flags['poll-ms'],
    warmup: flags.warmup,
    preconnect: !flags['new-connections'],
    generatorWarmup: flags['generator-warmup'],
    seatReaders: flags['seat-readers'],
    steadyRate: flags.rate,
    quick: flags.quick,
    profile: flags.profile,
    pgbench: !flags['no-pgbench'],
    webhook: flags.webhook,
    results: flags.results ?? null,
    databaseUrl: flags['database-url'],
    redisUrl: flags['redis-url'],
    logLevel: flags['log-level'],
    baseline: flags.baseline ?? null,
    candidate: flags.candidate ?? null,
    rounds: flags.rounds,
  };
}

/** The main thread's profile among a process's: the largest file (the loader thread's is tiny). */
async function mainThreadProfile(dir: string): Promise<string | null> {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.cpuprofile'));
  const sized = await Promise.all(files.map(async (f) => ({ file: path.join(dir, f), size: (await stat(path.join(dir, f))).size })));
  return sized.sort((a, b) => b.size - a.size)[0]?.file ?? null;
}

const say = (text: string) => process.stderr.write(`[bench] ${text}\n`);

async function main(): Promise<number> {
  let flags;
  try {
    flags = parse(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`bench: ${(error as Error).message}\n\n${HELP}\n`);
    return 2;
  }
  if (!flags) {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  const defaultResults = flags.quick ? 'bench/out/RESULTS.quick.md' : 'bench/RESULTS.md';
  const outDir = path.resolve('bench/out');
  const runId = new Date().toISOString().replace(/[:.]/g, '-');
  const logDir = path.join(outDir, `run-${runId}`);
  const profileDir = flags.profile ? path.join(logDir, 'profiles') : null;
  await mkdir(profileDir ?? logDir, { recursive: true });

  const adminToken = randomBytes(24).toString('base64url');
  // --candidate: A is another commit's product, so A's database gets that commit's migrations.
  const candidate = flags.candidate ? await checkoutBaseline(flags.candidate) : null;
  say(`recreating ${flags.databaseUrl}${candidate ? ` with the migrations of ${candidate.commit.slice(0, 12)} (--candidate)` : ''}`);
  const database = await recreateDatabase(
    flags.databaseUrl,
    candidate
      ? (url) => migrateWith(candidate.root, { NODE_ENV: 'production', DATABASE_URL: url, REDIS_URL: flags.redisUrl, ADMIN_TOKEN: adminToken, LOG_LEVEL: flags.logLevel }, logDir)
      : undefined,
  );
  const db = new pg.Pool({ connectionString: flags.databaseUrl, max: 3, application_name: 'ticket-rush-bench' });
  const redis = new Redis(flags.redisUrl, { maxRetriesPerRequest: 1 });
  const queuePrefix = `bench-${randomBytes(4).toString('hex')}`;
  const machine = await describeMachine(db, redis);

  let pgbench: PgbenchResult | null = null;
  if (flags.pgbench) {
    const pgbenchUrl = new URL(flags.databaseUrl);
    const settings = { url: pgbenchUrl.toString(), database: `${database}_pgbench`, scale: flags.quick ? 1 : 10, clients: 8, threads: 2, seconds: flags.quick ? 5 : 15 };
    say(`pgbench -i -s ${settings.scale}, then -N -c 8 -j 2 -T ${settings.seconds}`);
    pgbench = await runPgbench(settings);
    say(`pgbench: ${pgbench.tps.toFixed(0)} TPS`);
  }

  const port = await freePort();
  const sink = flags.webhook ? await startWebhookSink() : null;
  const env: Record<string, string> = {
    NODE_ENV: 'production',
    DATABASE_URL: flags.databaseUrl,
    REDIS_URL: flags.redisUrl,
    PORT: String(port),
    HOST: '127.0.0.1',
    ADMIN_TOKEN: adminToken,
    QUEUE_PREFIX: queuePrefix,
    // One generator address sends everything: a per-IP limit would refuse it. With --rate-limited
    // the limiter runs with limits nothing reaches, so its cost is measured and nothing refused.
    RATE_LIMIT_PER_MINUTE: flags.rateLimited ? String(UNREACHED_RATE_LIMIT) : '0',
    ...(flags.rateLimited ? { STATUS_RATE_LIMIT_PER_MINUTE: String(UNREACHED_RATE_LIMIT) } : {}),
    WORKER_CONCURRENCY: String(flags.concurrency),
    ENQUEUE_BATCH_SIZE: String(flags.enqueueBatch),
    ENQUEUE_LINGER_MS: String(flags.enqueueLinger),
    API_WARMUP_REQUESTS: String(flags.apiWarmup),
    WORKER_BATCH_SIZE: String(flags.batchSize),
    WORKER_BATCH_INTERVAL_MS: String(flags.batchInterval),
    DB_POOL_SIZE: String(flags.dbPool),
    LOG_LEVEL: flags.logLevel,
    // The sink is on loopback, which production refuses unless allowed.
    ...(sink ? { WEBHOOK_ALLOWED_HOSTS: '127.0.0.1' } : {}),
  };
  const settings: BenchSettings = {
    apis: flags.apis,
    workers: flags.workers,
    workerConcurrency: flags.concurrency,
    enqueueBatch: flags.enqueueBatch,
    enqueueLinger: flags.enqueueLinger,
    apiWarmup: flags.apiWarmup,
    batchSize: flags.batchSize,
    batchInterval: flags.batchInterval,
    rateLimited: flags.rateLimited,
    submitWait: flags.submitWait,
    apiDbPool: flags.dbPool,
    workerDbPool: Math.max(flags.dbPool, 2),
    pollMs: flags.pollMs,
    warmup: flags.warmup,
    preconnect: flags.preconnect,
    generatorWarmup: flags.generatorWarmup,
    logLevel: flags.logLevel,
    quick: flags.quick,
    profile: flags.profile,
    command: `npm run bench -- ${process.argv.slice(2).join(' ')}`.trim(),
    env: { ...env, ADMIN_TOKEN: '(generated)', DATABASE_URL: flags.databaseUrl },
  };

  /** The burst tool's options for a scenario on these shows (the caller adds files and progress). */
  const burstOptions = (scenario: Scenario, showIds: string[], urls: string[], databaseUrl: string): BurstOptions => ({
    urls,
    adminToken,
    shows: { kind: 'existing', ids: showIds },
    requests: scenario.requests,
    concurrency: scenario.inFlight,
    arrival: scenario.arrival,
    seatCount: scenario.seatCount,
    specificSeatsRatio: scenario.specificSeatsRatio,
    waitlistRatio: 0,
    section: null,
    confirmRatio: scenario.confirmRatio,
    cancelShare: scenario.cancelShare,
    pollMs: flags.pollMs,
    pollConcurrency: 64,
    pollWaitSeconds: 25,
    submitWaitSeconds: flags.submitWait,
    customers: null,
    idempotencyKeys: false,
    maxRetries: 30,
    preconnect: flags.preconnect,
    generatorWarmup: flags.generatorWarmup,
    decisionTimeoutSeconds: 600,
    json: null,
    html: null,
    databaseUrl,
    audit: true,
    auditGraceSeconds: 2,
    redisUrl: flags.redisUrl,
    queuePrefix,
    progress: false,
    seed: 1_000 + scenario.name.charCodeAt(0),
    sale: scenario.salesOpenInSeconds ? { opensInSeconds: scenario.salesOpenInSeconds, maxOvertakes: 0 } : null,
  });

  /**
   * --warmup N: scenario (a)'s shape on a show of its own, N requests on N/4 seats, before the
   * measured scenarios, so they meet services whose code is already optimised, as a long-running
   * deployment's would be. Its connections are closed after it; each scenario opens its own.
   */
  const warmUp = async (urls: string[], requests: number, databaseUrl: string) => {
    const [show] = await prepareShows(admin, { kind: 'create', count: 1, seats: Math.max(1, Math.ceil(requests / 4)) }, adminToken);
    say(`warming up: ${requests.toLocaleString('en-US')} requests on a show of their own`);
    const report = await runBurst({ ...burstOptions(scenarios(false).a, [show!.id], urls, databaseUrl), requests, seed: 7 });
    say(`warm-up: ${Math.round(report.rates.acceptedPerSecond).toLocaleString('en-US')} accepted/s, audit ${report.verdict}`);
    if (report.verdict !== 'pass') throw new Error('the warm-up burst failed its audit');
  };

  /** A product to measure: this checkout, or with --baseline another commit's, each on its own database. */
  type Build = { label: 'A' | 'B'; root: string | undefined; databaseUrl: string; database: string; db: pg.Pool; seatMapShow: string | null };
  const current: Build = { label: 'A', root: candidate?.root, databaseUrl: flags.databaseUrl, database, db, seatMapShow: null };

  const plans: Record<string, string> = {};
  const admin = new HttpClient(`http://127.0.0.1:${port}`, 2);

  /** One scenario on running services; with `explain`, the claim plans before and after go into `plans`. */
  const runScenario = async (name: Scenario['name'], build: Build, services: RunningServices, files: string, explain: boolean): Promise<ScenarioResult> => {
    const scenario = scenarios(flags.quick, flags.steadyRate)[name];
    const inFlight = flags.inFlight ?? scenario.inFlight;
    const source =
      'seats' in scenario.shows
        ? ({ kind: 'create', count: scenario.shows.count, seats: scenario.shows.seats } as const)
        : ({ kind: 'create-sections', count: scenario.shows.count, sections: scenario.shows.sections } as const);
    // A scheduled sale's show is created with its opening ahead; the burst waits for it.
    const opensAt = scenario.salesOpenInSeconds ? new Date(Date.now() + scenario.salesOpenInSeconds * 1_000) : null;
    const shows = await prepareShows(admin, source, adminToken, opensAt);
    if (explain && name === 'a') plans['before the burst (all seats AVAILABLE)'] = await explainClaims(build.db, shows[0]!.id);
    const options: BurstOptions = {
      ...burstOptions(scenario, shows.map((s) => s.id), services.urls, build.databaseUrl),
      concurrency: inFlight,
      json: `${files}.json`,
      html: `${files}.html`,
      progress: true,
    };
    say(`scenario (${name}) ${scenario.title}: ${scenario.description}`);
    const processes: Record<string, number> = {};
    services.pids.apis.forEach((pid, i) => (processes[flags.apis === 1 ? 'api' : `api ${i + 1}`] = pid));
    services.pids.workers.forEach((pid, i) => (processes[`worker ${i + 1}`] = pid));
    const monitor = new SystemMonitor(build.db, redis, build.database, processes);
    if (scenario.workersAfterAccepting && services.workersStarted) throw new Error(`scenario (${name}) needs services whose workers have not started`);
    const hooks: BurstHooks = scenario.workersAfterAccepting
      ? {
          beforeDecisions: async () => {
            say(`all ${options.requests.toLocaleString('en-US')} requests answered with no worker running; starting the workers`);
            await services.startWorkers();
            services.pids.workers.forEach((pid, i) => monitor.watch(`worker ${i + 1}`, pid));
          },
        }
      : {};
    if (flags.seatReaders > 0 && !build.seatMapShow) {
      say('creating the 100,000-seat show the seat-map readers read');
      const [big] = await prepareShows(admin, { kind: 'create', count: 1, seats: 100_000 }, adminToken);
      build.seatMapShow = big!.id;
    }
    const readers = build.seatMapShow ? new SeatMapReaders(services.urls, build.seatMapShow, flags.seatReaders) : null;
    await monitor.start();
    readers?.start();
    let lastPrinted = 0;
    const report = await runBurst(
      options,
      (line, final) => {
        if (final || Date.now() - lastPrinted >= 5_000) {
          lastPrinted = Date.now();
          say(line);
        }
      },
      hooks,
    );
    const readersSummary = await readers?.stop();
    const monitored = await monitor.stop();
    if (readersSummary) say(formatSeatReaders(readersSummary));
    if (explain && name === 'a') plans['after the burst (sold out)'] = await explainClaims(build.db, shows[0]!.id);
    if (sink) {
      // A baseline from before the outbox's fan-out (drizzle/0013) has no fanned_out_at to count.
      const fansOut = (await build.db.query(`SELECT 1 FROM information_schema.columns WHERE table_name = 'webhook_events' AND column_name = 'fanned_out_at'`)).rowCount === 1;
      const { rows } = await build.db.query<{ pending: number; events: number; unfanned: number | null }>(
        `SELECT (SELECT count(*)::int FROM webhook_deliveries WHERE status = 'PENDING') AS pending, (SELECT count(*)::int FROM webhook_events) AS events,
                ${fansOut ? '(SELECT count(*)::int FROM webhook_events WHERE fanned_out_at IS NULL)' : 'NULL::int'} AS unfanned`,
      );
      const unfanned = rows[0]!.unfanned === null ? '' : ` (${rows[0]!.unfanned} not fanned out yet)`;
      say(`webhook: ${rows[0]!.events} events in the outbox${unfanned}, ${sink.received()} received by the sink, ${rows[0]!.pending} deliveries pending`);
    }
    await writeReportFiles(report, options);
    process.stdout.write(`${formatReport(report)}\n`);
    return { scenario, inFlight, report, monitor: monitored };
  };

  const start = async (build: Build, dir: string, profileDir: string | null, deferWorkers = false) => {
    say(`starting ${flags.apis} API and ${flags.workers} worker process(es)${deferWorkers ? ' (the workers once the queue is full)' : ''} of ${build.root ?? 'this tree'} (logs in ${path.relative(process.cwd(), dir)})`);
    await mkdir(dir, { recursive: true });
    const services = await startServices({ env: { ...env, DATABASE_URL: build.databaseUrl }, apis: flags.apis, workers: flags.workers, logDir: dir, profileDir, root: build.root, deferWorkers });
    if (sink) {
      const headers = { 'content-type': 'application/json', authorization: `Bearer ${adminToken}` };
      const answer = await admin.send('POST', '/admin/webhooks', JSON.stringify({ url: sink.url }), headers);
      if (answer.status !== 201) throw new Error(`registering the webhook answered ${answer.status}`);
      say(`webhook registered: every event type to ${sink.url}`);
    }
    // The warm-up needs workers; the drain's services have none until its queue is full.
    if (flags.warmup > 0 && !deferWorkers) await warmUp(services.urls, flags.warmup, build.databaseUrl);
    return services;
  };

  /**
   * The services for scenario `name`: those running, or for the drain fresh ones whose workers
   * start once its requests are all queued (later scenarios keep them, workers and all).
   */
  const servicesFor = async (name: ScenarioName, running: RunningServices | null, build: Build, dir: string, profileDir: string | null) => {
    if (!scenarios(flags.quick, flags.steadyRate)[name].workersAfterAccepting) return running ?? (await start(build, dir, profileDir));
    if (running) await running.stop();
    return start(build, path.join(dir, `services-${name}`), profileDir, true);
  };

  const results: ScenarioResult[] = [];
  const profiles: string[] = [];
  let services: RunningServices | null = null;
  let exitCode = 0;
  try {
    if (flags.baseline) {
      const baseline = await checkoutBaseline(flags.baseline);
      const baselineUrl = new URL(flags.databaseUrl);
      baselineUrl.pathname = `/${database}_baseline`;
      say(`baseline ${baseline.commit.slice(0, 12)} checked out in ${path.relative(process.cwd(), baseline.root)}; recreating ${baselineUrl} with its migrations`);
      const other: Build = {
        label: 'B',
        root: baseline.root,
        databaseUrl: baselineUrl.toString(),
        database: await recreateDatabase(baselineUrl.toString(), (url) => migrateWith(baseline.root, { ...env, DATABASE_URL: url }, logDir)),
        db: new pg.Pool({ connectionString: baselineUrl.toString(), max: 3, application_name: 'ticket-rush-bench' }),
        seatMapShow: null,
      };
      const pairs: Pair[] = [];
      try {
        for (let round = 1; round <= flags.rounds; round++) {
          const load = os.loadavg()[0]!;
          const measured: Partial<Record<Build['label'], ScenarioResult[]>> = {};
          // A B, then B A, and so on: whichever build runs first in a round fares worse (about
          // 1.1-1.9x the accept p99 in this session's runs, bench/RESULTS.md), so the order alternates.
          for (const build of round % 2 === 1 ? [current, other] : [other, current]) {
            const dir = path.join(logDir, `round-${round}-${build.label}`);
            measured[build.label] = [];
            for (const name of flags.scenarios) {
              const ready: RunningServices = await servicesFor(name, services, build, dir, null);
              services = ready;
              measured[build.label]!.push(await runScenario(name, build, ready, path.join(dir, `scenario-${name}`), false));
            }
            await services?.stop();
            services = null;
          }
          measured.A!.forEach((result, i) => pairs.push({ round, load, current: result, baseline: measured.B![i]! }));
          if ([...measured.A!, ...measured.B!].some((r) => r.report.verdict !== 'pass')) exitCode = 1;
        }
      } finally {
        await other.db.end();
      }
      const comparison = renderComparison(
        {
          current: candidate ? `${flags.candidate} (${candidate.commit.slice(0, 12)})` : machine.commit,
          baseline: `${flags.baseline} (${baseline.commit.slice(0, 12)})`,
          command: settings.command,
          machine: `${machine.cpu}, ${machine.cores} cores, load average ${machine.loadAverageAtStart.join(' / ')} at the start`,
        },
        pairs,
      );
      const file = flags.results ?? path.join(logDir, 'baseline.md');
      await writeFile(file, `${comparison}\n`);
      process.stdout.write(`\n${comparison}\n`);
      say(`comparison written to ${path.relative(process.cwd(), file)}; per-run JSON, HTML and logs in ${path.relative(process.cwd(), logDir)}`);
    } else {
      // With --profile each scenario gets fresh services, so each profile covers one scenario.
      for (const name of flags.scenarios) {
        const ready: RunningServices = await servicesFor(name, services, current, logDir, profileDir ? path.join(profileDir, name) : null);
        services = ready;
        const result = await runScenario(name, current, ready, path.join(logDir, `scenario-${name}`), true);
        if (result.report.verdict !== 'pass') exitCode = 1;
        results.push(result);
        if (profileDir) {
          say('stopping the services to write their profiles');
          await services.stop();
          services = null;
          for (const child of (await readdir(path.join(profileDir, name))).sort()) {
            const file = await mainThreadProfile(path.join(profileDir, name, child));
            if (file) profiles.push(formatProfile(summariseProfile(file), `${child} during scenario (${name}) ${result.scenario.title} (whole life of the process, start-up included)`));
          }
        }
      }
      await writeResults(flags.results ?? defaultResults, { machine, settings, pgbench, results, profiles, plans, logDir: path.relative(process.cwd(), logDir) });
      say(`results written to ${flags.results ?? defaultResults}; per-scenario JSON and HTML in ${path.relative(process.cwd(), logDir)}`);
    }
  } finally {
    await admin.close();
    await sink?.close();
    if (services) {
      say('stopping the services');
      await services.stop();
    }
  }

  await deleteKeysMatching(redis, `${queuePrefix}:*`);
  redis.disconnect();
  await db.end();
  return exitCode;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(3);
  },
);
