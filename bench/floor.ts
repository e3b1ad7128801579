import { fork } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Queue } from 'bullmq';
import Fastify from 'fastify';
import { Redis } from 'ioredis';
import { z } from 'zod';
import { TurnBatcher } from '../shared/queue/turn-batcher.js';
import { deleteKeysMatching } from '../shared/redis.js';
import { spread } from './lib/baseline.js';
import { recreateDatabase } from './lib/database.js';
import { HttpClient, JSON_HEADERS } from './lib/http.js';
import { Latency } from './lib/latency.js';
import { parseFlags, UsageError, whole } from './lib/options.js';
import { freePort, startServices } from './lib/services.js';
import { processCpuMs } from './lib/system-monitor.js';

/**
 * `npm run bench:floor`: the machine's ceiling for an accept path, the way pgbench is its
 * ceiling for Postgres. The same closed-loop generator as the burst tool (its HTTP client, C requests in
 * flight) drives stripped-down Fastify servers that do only part of what POST /booking does:
 *
 *   fastify       parse the JSON body, answer 202 (no Redis)
 *   redis         + one SET per request (auto-pipelined, as the API's connection)
 *   bullmq        + one BullMQ job per request (what the API did before batch jobs)
 *   bullmq-batch  + one BullMQ job per event-loop turn of requests, at most 100 (what the API does)
 *   api           the real API (services/api/server.ts as the bench runs it), on a show of its
 *                 own in a database of its own, no worker running: everything POST /booking does
 *
 * Each server gets its connections opened, then a cold round (code not yet optimised) and a
 * warm one. No workers, no polls: the stripped-down servers' accept rate is more than the
 * real API can reach on the same machine, and the `api` rows say how much of it the API
 * reaches in the same run (issue 16's accept-path target is half the batched floor's rate).
 */

const MODES = ['fastify', 'redis', 'bullmq', 'bullmq-batch', 'api'] as const;
type Mode = (typeof MODES)[number];

const HELP = `Usage: npm run bench:floor -- [options]

  --requests N      measured requests per server (default 20000; as many again warm it up)
  --in-flight C     requests in flight (default 500, as scenario a)
  --modes LIST      servers to measure, comma-separated (default all: ${MODES.join(',')})
  --repeat N        measure every server N times, in turn (default 1): the API's share of the
                    floor per run, then its median and range
  --redis-url URL   Redis (default redis://127.0.0.1:6379)
  --database-url U  the api mode's database, dropped and recreated
                    (default postgres://postgres@127.0.0.1:5432/ticket_rush_floor)
  --profile         --cpu-prof each server; the profiles' folders are printed
  -h, --help`;

const JOB_OPTIONS = { attempts: 100, removeOnComplete: true, removeOnFail: true };

/** The server side, run in a child process so it has its own event loop and CPU count. */
async function serve(mode: Mode, redisUrl: string, prefix: string): Promise<void> {
  const app = Fastify({ logger: false });
  const redis = new Redis(redisUrl, { enableAutoPipelining: true, maxRetriesPerRequest: 1 });
  const queue = new Queue('floor', { connection: redis, prefix });
  // The API's own batching (shared/queue/turn-batcher.ts), one job per event-loop turn.
  const batcher = new TurnBatcher<unknown, void>(async (jobs) => {
    await queue.add('batch', { requests: jobs }, { ...JOB_OPTIONS, jobId: randomUUID() });
    return jobs.map(() => undefined);
  }, 100);

  app.get('/health', async () => ({ status: 'ok' }));
  app.post('/booking', async (request, reply) => {
    const id = randomUUID();
    const job = { id, ...(request.body as object), accepted_at: new Date().toISOString() };
    if (mode === 'redis') await redis.set(queue.toKey(`req:${id}`), JSON.stringify(job), 'EX', 60);
    else if (mode === 'bullmq') await queue.add('one', job, { ...JOB_OPTIONS, jobId: id });
    else if (mode === 'bullmq-batch') await batcher.add(job);
    return reply.status(202).send({ id, status: 'QUEUED', status_url: `/booking/${id}/status` });
  });
  const url = await app.listen({ port: 0, host: '127.0.0.1' });
  process.send!({ url });
  process.once('message', async () => {
    await app.close();
    await queue.close();
    await deleteKeysMatching(redis, `${prefix}:*`).catch(() => {});
    redis.disconnect();
    process.disconnect();
  });
}

const ms = (value: number) => value.toFixed(1);
const cpuSeconds = (usage: NodeJS.CpuUsage) => (usage.user + usage.system) / 1e6;

type Round = { perSecond: number; latency: ReturnType<Latency['summary']>; clientCpu: number; serverCpuUs: number | null };

/** A server under test: where it listens, the process whose CPU is counted, the body it is sent. */
type Server = { url: string; pid: number; body: string; stop: () => Promise<void> };

async function drive(http: HttpClient, server: Server, requests: number, inFlight: number): Promise<Round> {
  const latency = new Latency();
  let next = 0;
  const cpuBefore = process.cpuUsage();
  const serverBefore = processCpuMs(server.pid);
  const started = performance.now();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next++ < requests) {
        const sent = performance.now();
        const answer = await http.send('POST', '/booking', server.body, JSON_HEADERS);
        if (answer.status !== 202) throw new Error(`unexpected ${answer.status}: ${JSON.stringify(answer.body)}`);
        latency.record(performance.now() - sent);
      }
    }),
  );
  const seconds = (performance.now() - started) / 1_000;
  const serverAfter = processCpuMs(server.pid);
  return {
    perSecond: requests / seconds,
    latency: latency.summary(),
    clientCpu: cpuSeconds(process.cpuUsage(cpuBefore)) / seconds,
    serverCpuUs: serverBefore === null || serverAfter === null ? null : ((serverAfter - serverBefore) * 1_000) / requests,
  };
}

type Options = { requests: number; inFlight: number; redisUrl: string; databaseUrl: string; profile: boolean };

async function forkFloorServer(mode: Exclude<Mode, 'api'>, options: Options): Promise<Server> {
  const profileDir = options.profile ? await mkdtemp(path.join(tmpdir(), `floor-${mode}-`)) : null;
  const execArgv = profileDir ? [...process.execArgv, '--cpu-prof', `--cpu-prof-dir=${profileDir}`] : process.execArgv;
  const child = fork(process.argv[1]!, ['--serve', mode, '--redis-url', options.redisUrl], { execArgv });
  const { url } = await new Promise<{ url: string }>((resolve) => child.once('message', (message) => resolve(message as { url: string })));
  return {
    url,
    pid: child.pid!,
    body: JSON.stringify({ show_id: randomUUID(), customer_email: 'floor@bench.example', seat_count: 1 }),
    stop: async () => {
      child.send('stop');
      await new Promise((resolve) => child.once('exit', resolve));
      if (profileDir) console.error(`bench:floor: ${mode}'s profile is in ${profileDir}`);
    },
  };
}

/**
 * The real API as `npm run bench` starts it (production mode, warn logs, the per-IP limit off
 * because one address sends everything), on a new database with one 5,000-seat show and a
 * queue prefix of its own, no worker: every request stays queued, as in the drain's first phase.
 */
async function startRealApi(options: Options): Promise<Server> {
  await recreateDatabase(options.databaseUrl);
  const adminToken = randomBytes(24).toString('base64url');
  const prefix = `floor-${randomBytes(4).toString('hex')}`;
  const logDir = await mkdtemp(path.join(tmpdir(), 'floor-api-'));
  const profileDir = options.profile ? path.join(logDir, 'profiles') : null;
  const env = {
    NODE_ENV: 'production',
    DATABASE_URL: options.databaseUrl,
    REDIS_URL: options.redisUrl,
    PORT: String(await freePort()),
    HOST: '127.0.0.1',
    ADMIN_TOKEN: adminToken,
    QUEUE_PREFIX: prefix,
    RATE_LIMIT_PER_MINUTE: '0',
    LOG_LEVEL: 'warn',
  };
  const services = await startServices({ env, apis: 1, workers: 0, logDir, profileDir, deferWorkers: true });
  const stop = async () => {
    await services.stop();
    const redis = new Redis(options.redisUrl, { maxRetriesPerRequest: 1 });
    await deleteKeysMatching(redis, `${prefix}:*`).catch(() => {});
    redis.disconnect();
    // The service log is only worth keeping beside a profile; a failed start has thrown with its tail.
    if (profileDir) console.error(`bench:floor: the API's profile is in ${profileDir}`);
    else await rm(logDir, { recursive: true, force: true });
  };
  const url = services.urls[0]!;
  const created = await fetch(`${url}/admin/shows`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${adminToken}` },
    body: JSON.stringify({ name: 'Floor', start_time: new Date(Date.now() + 30 * 86_400_000).toISOString(), total_seats: 5_000 }),
  });
  const show = (await created.json()) as { id?: string };
  if (created.status !== 201 || !show.id) {
    await stop();
    throw new Error(`creating the show answered ${created.status}: ${JSON.stringify(show)}`);
  }
  return {
    url,
    pid: services.pids.apis[0]!,
    body: JSON.stringify({ show_id: show.id, customer_email: 'floor@bench.example', seat_count: 1 }),
    stop,
  };
}

async function measure(mode: Mode, options: Options) {
  const server = mode === 'api' ? await startRealApi(options) : await forkFloorServer(mode, options);
  const http = new HttpClient(server.url, options.inFlight);
  try {
    // Connections open before the clock, as the bench's scenarios have them: the cold round
    // then measures cold code, not connections waiting to be accepted.
    await http.openAll('/health');
    const cold = await drive(http, server, options.requests, options.inFlight);
    const warm = await drive(http, server, options.requests, options.inFlight);
    return { mode, cold, warm };
  } finally {
    await http.close();
    await server.stop();
  }
}

const FLAGS = {
  serve: { type: 'string' },
  requests: { type: 'string' },
  'in-flight': { type: 'string' },
  modes: { type: 'string' },
  repeat: { type: 'string' },
  'redis-url': { type: 'string' },
  'database-url': { type: 'string' },
  profile: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

const FloorFlags = z.object({
  serve: z.enum(MODES).optional(),
  requests: whole(100, 10_000_000).default(20_000),
  'in-flight': whole(1, 10_000).default(500),
  modes: z
    .string()
    .transform((list) => list.split(',').map((mode) => mode.trim()))
    .pipe(z.array(z.enum(MODES)).min(1))
    .default([...MODES]),
  repeat: whole(1, 100).default(1),
  'redis-url': z.string().default('redis://127.0.0.1:6379'),
  'database-url': z.string().default('postgres://postgres@127.0.0.1:5432/ticket_rush_floor'),
  profile: z.boolean().default(false),
  help: z.boolean().default(false),
});

async function main(): Promise<void> {
  let flags;
  try {
    flags = parseFlags(process.argv.slice(2), FLAGS, FloorFlags);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    console.error(`bench:floor: ${error.message}\n\n${HELP}`);
    process.exitCode = 2;
    return;
  }
  const redisUrl = flags['redis-url'];
  if (flags.serve) return serve(flags.serve, redisUrl, `floor-${randomUUID().slice(0, 8)}`);
  if (flags.help) return void console.log(HELP);
  const options: Options = {
    requests: flags.requests,
    inFlight: flags['in-flight'],
    redisUrl,
    databaseUrl: flags['database-url'],
    profile: flags.profile,
  };
  console.log(`Accept-path floor on ${cpus().length} cores, ${options.inFlight} in flight, ${options.requests} requests per round\n`);
  console.log('| run | server | round | accepted/s | p50 ms | p99 ms | max ms | server CPU per request | generator CPU |');
  console.log('| ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |');
  const shares = { cold: [] as number[], warm: [] as number[] };
  for (let run = 1; run <= flags.repeat; run++) {
    const rates = new Map<string, number>();
    for (const mode of flags.modes) {
      const result = await measure(mode, options);
      for (const [round, figures] of [['cold', result.cold], ['warm', result.warm]] as const) {
        const { latency } = figures;
        rates.set(`${mode} ${round}`, figures.perSecond);
        const serverCpu = figures.serverCpuUs === null ? '–' : `${Math.round(figures.serverCpuUs)} µs`;
        console.log(
          `| ${run} | ${mode} | ${round} | ${Math.round(figures.perSecond).toLocaleString('en-US')} | ${ms(latency.p50)} | ${ms(latency.p99)} | ${ms(latency.max)} | ${serverCpu} | ${Math.round(figures.clientCpu * 100)}% |`,
        );
      }
    }
    for (const round of ['cold', 'warm'] as const) {
      const api = rates.get(`api ${round}`);
      const floor = rates.get(`bullmq-batch ${round}`);
      if (api !== undefined && floor !== undefined) shares[round].push(api / floor);
    }
  }
  for (const round of ['cold', 'warm'] as const) {
    if (shares[round].length === 0) continue;
    const { median, min, max } = spread(shares[round]);
    const runs = shares[round].map((share) => share.toFixed(2)).join(' · ');
    console.log(
      `\nThe real API ${round}: ${median.toFixed(2)} of bullmq-batch's accepted/s` +
        (shares[round].length > 1 ? ` (median of ${shares[round].length} runs: ${runs}; range ${min.toFixed(2)}–${max.toFixed(2)})` : '') +
        " (issue 16's target: at least 0.50)",
    );
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exitCode = 1;
});
