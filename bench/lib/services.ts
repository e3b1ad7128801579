import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { Redis } from 'ioredis';
import { QUEUES } from '../../shared/queue/catalog.js';
import { openQueue } from '../../shared/queue/queues.js';

/**
 * Runs the API and N worker processes as child processes, the way an operator would
 * (`start:api`, `start:worker`), so the benchmark measures separate processes on their own
 * event loops, not one process sharing a loop with the generator.
 *
 * They run from source through tsx's loader (`node --import tsx`): tsx compiles each module once
 * at load time with esbuild and then V8 runs plain JavaScript, so steady-state speed is the
 * same as the compiled dist, and the benchmark needs no build step and cannot run stale code.
 */

export type ServiceSettings = {
  env: Record<string, string>;
  /** API replicas, each on its own port (the first on env.PORT, the others on free ports). */
  apis: number;
  workers: number;
  logDir: string;
  /** Directory for `--cpu-prof` profiles of the API and the first worker; none when null. */
  profileDir: string | null;
};

export type RunningServices = {
  /** One base URL per API replica. */
  urls: string[];
  pids: { apis: number[]; workers: number[] };
  stop: () => Promise<void>;
};

export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  server.close();
  if (!address || typeof address === 'string') throw new Error('no free port');
  return address.port;
}

function launch(name: string, entry: string, settings: ServiceSettings, profile: boolean, extraEnv: Record<string, string> = {}): ChildProcess {
  const args = ['--import', 'tsx'];
  // One folder per process: tsx's loader runs in a worker thread that writes a profile of its
  // own, so a fixed --cpu-prof-name would be overwritten by it. The main thread's is the largest.
  if (profile && settings.profileDir) args.push('--cpu-prof', `--cpu-prof-dir=${path.join(settings.profileDir, name)}`);
  args.push(entry);
  const log = createWriteStream(path.join(settings.logDir, `${name}.log`));
  const child = spawn(process.execPath, args, { env: { ...process.env, ...settings.env, ...extraEnv }, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.pipe(log);
  child.stderr!.pipe(log);
  return child;
}

function logTail(settings: ServiceSettings, name: string): string {
  try {
    return readFileSync(path.join(settings.logDir, `${name}.log`), 'utf8').split('\n').slice(-15).join('\n');
  } catch {
    return '';
  }
}

/** Resolves when `ready()` is true; rejects when a child exits first or time runs out. */
async function waitFor(what: string, ready: () => Promise<boolean>, children: ChildProcess[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const dead = children.find((child) => child.exitCode !== null || child.signalCode !== null);
    if (dead) throw new Error(`${what}: a service exited early (code ${dead.exitCode ?? dead.signalCode})`);
    if (await ready().catch(() => false)) return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`${what}: not ready within ${timeoutMs / 1_000} s`);
}

async function stopChild(child: ChildProcess, timeoutMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  await exited;
  clearTimeout(timer);
}

export async function startServices(settings: ServiceSettings): Promise<RunningServices> {
  const ports = [Number(settings.env.PORT)];
  while (ports.length < settings.apis) ports.push(await freePort());
  const urls = ports.map((port) => `http://127.0.0.1:${port}`);
  const apiNames = ports.map((_, i) => (settings.apis === 1 ? 'api' : `api-${i + 1}`));
  // Replicas behind a balancer in production; here the generator spreads its connections over them.
  const apis = ports.map((port, i) => launch(apiNames[i]!, 'services/api/server.ts', settings, i === 0, { PORT: String(port) }));
  // Each worker serves its metrics on its own port, as on a real host with several workers.
  const metricsPorts = [];
  for (let i = 0; i < settings.workers; i++) metricsPorts.push(await freePort());
  const workers = metricsPorts.map((metricsPort, i) =>
    launch(`worker-${i + 1}`, 'services/worker/worker.ts', settings, i === 0, { WORKER_METRICS_PORT: String(metricsPort) }),
  );
  const all = [...apis, ...workers];
  const stop = async () => {
    // The API first (stop accepting), then the workers drain; each has its own graceful shutdown.
    await Promise.all(apis.map((api) => stopChild(api, 30_000)));
    await Promise.all(workers.map((worker) => stopChild(worker, 30_000)));
  };
  const redis = new Redis(settings.env.REDIS_URL!, { maxRetriesPerRequest: 1 });
  const queue = openQueue(QUEUES.bookings, redis, settings.env.QUEUE_PREFIX!);
  try {
    for (const url of urls) await waitFor('api', async () => (await fetch(`${url}/ready`)).status === 200, all, 60_000);
    await waitFor('workers', async () => (await queue.getWorkersCount()) >= settings.workers, all, 60_000);
  } catch (error) {
    await stop();
    const tails = [...apiNames, ...workers.map((_, i) => `worker-${i + 1}`)].map((name) => `--- ${name}.log\n${logTail(settings, name)}`).join('\n');
    throw new Error(`${(error as Error).message}\n${tails}`, { cause: error });
  } finally {
    await queue.close();
    redis.disconnect();
  }
  return { urls, pids: { apis: apis.map((api) => api.pid!), workers: workers.map((w) => w.pid!) }, stop };
}
