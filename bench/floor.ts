import { fork } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { cpus } from 'node:os';
import { performance } from 'node:perf_hooks';
import { Queue } from 'bullmq';
import Fastify from 'fastify';
import { Redis } from 'ioredis';
import { z } from 'zod';
import { TurnBatcher } from '../shared/queue/turn-batcher.js';
import { deleteKeysMatching } from '../shared/redis.js';
import { HttpClient, JSON_HEADERS } from './lib/http.js';
import { Latency } from './lib/latency.js';
import { parseFlags, UsageError, whole } from './lib/options.js';

/**
 * `npm run bench:floor`: the machine's ceiling for an accept path, the way pgbench is its
 * ceiling for Postgres. The same closed-loop generator as the burst tool (its HTTP client, C requests in
 * flight) drives stripped-down Fastify servers that do only part of what POST /booking does:
 *
 *   fastify       parse the JSON body, answer 202 (no Redis)
 *   redis         + one SET per request (auto-pipelined, as the API's connection)
 *   bullmq        + one BullMQ job per request (what the API did before batch jobs)
 *   bullmq-batch  + one BullMQ job per event-loop turn of requests, at most 100 (what the API does)
 *
 * Each server gets its connections opened, then a cold round (code not yet optimised) and a
 * warm one. No workers, no polls, no Postgres: whatever accept rate and latency
 * these reach is more than the real API can reach on the same machine.
 */

const MODES = ['fastify', 'redis', 'bullmq', 'bullmq-batch'] as const;
type Mode = (typeof MODES)[number];

const HELP = `Usage: npm run bench:floor -- [options]

  --requests N      measured requests per server (default 20000; as many again warm it up)
  --in-flight C     requests in flight (default 500, as scenario a)
  --redis-url URL   Redis (default redis://127.0.0.1:6379)
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
    process.send!({ cpuSeconds: cpuSeconds(process.cpuUsage()) });
    process.disconnect();
  });
}

const ms = (value: number) => value.toFixed(1);
const cpuSeconds = (usage: NodeJS.CpuUsage) => (usage.user + usage.system) / 1e6;

type Round = { perSecond: number; latency: ReturnType<Latency['summary']>; clientCpu: number };

async function drive(http: HttpClient, requests: number, inFlight: number): Promise<Round> {
  const body = JSON.stringify({ show_id: randomUUID(), customer_email: 'floor@example.com', seat_count: 1 });
  const latency = new Latency();
  let next = 0;
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next++ < requests) {
        const sent = performance.now();
        const answer = await http.send('POST', '/booking', body, JSON_HEADERS);
        if (answer.status !== 202) throw new Error(`unexpected ${answer.status}`);
        latency.record(performance.now() - sent);
      }
    }),
  );
  const seconds = (performance.now() - started) / 1_000;
  return { perSecond: requests / seconds, latency: latency.summary(), clientCpu: cpuSeconds(process.cpuUsage(cpuBefore)) / seconds };
}

async function measure(mode: Mode, options: { requests: number; inFlight: number; redisUrl: string }) {
  const child = fork(process.argv[1]!, ['--serve', mode, '--redis-url', options.redisUrl], { execArgv: process.execArgv });
  const { url } = await new Promise<{ url: string }>((resolve) => child.once('message', (message) => resolve(message as { url: string })));
  const http = new HttpClient(url, options.inFlight);
  try {
    // Connections open before the clock, as the bench's scenarios have them: the cold round
    // then measures cold code, not connections waiting to be accepted.
    await http.openAll('/health');
    const cold = await drive(http, options.requests, options.inFlight);
    const warm = await drive(http, options.requests, options.inFlight);
    return { mode, cold, warm };
  } finally {
    await http.close();
    child.send('stop');
    await new Promise((resolve) => child.once('exit', resolve));
  }
}

const FLAGS = {
  serve: { type: 'string' },
  requests: { type: 'string' },
  'in-flight': { type: 'string' },
  'redis-url': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

const FloorFlags = z.object({
  serve: z.enum(MODES).optional(),
  requests: whole(100, 10_000_000).default(20_000),
  'in-flight': whole(1, 10_000).default(500),
  'redis-url': z.string().default('redis://127.0.0.1:6379'),
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
  const options = { requests: flags.requests, inFlight: flags['in-flight'], redisUrl };
  console.log(`Accept-path floor on ${cpus().length} cores, ${options.inFlight} in flight, ${options.requests} requests per round\n`);
  console.log('| server | round | accepted/s | p50 ms | p99 ms | max ms | generator CPU |');
  console.log('| --- | --- | ---: | ---: | ---: | ---: | ---: |');
  for (const mode of MODES) {
    const result = await measure(mode, options);
    for (const [round, figures] of [['cold', result.cold], ['warm', result.warm]] as const) {
      const { latency } = figures;
      console.log(
        `| ${mode} | ${round} | ${Math.round(figures.perSecond).toLocaleString('en-US')} | ${ms(latency.p50)} | ${ms(latency.p99)} | ${ms(latency.max)} | ${Math.round(figures.clientCpu * 100)}% |`,
      );
    }
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exitCode = 1;
});
