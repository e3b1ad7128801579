import path from 'node:path';
import { Redis } from 'ioredis';
import { QUEUES } from '../../shared/queue/catalog.js';
import { openQueue } from '../../shared/queue/queues.js';
import { freePort, ProcessRegistry, waitUntil, type ServiceProcess } from '../../tests/support/processes.js';

export { freePort };

/**
 * Runs the API replicas and N worker processes as child processes, the way an operator would,
 * through the tests' process harness (tests/support/processes.ts), so the benchmark measures
 * separate processes on their own event loops, not one process sharing a loop with the generator.
 * They run from source through tsx's loader: tsx compiles each module once at load time and V8
 * then runs plain JavaScript, so steady-state speed is the dist's and nothing can be stale.
 */

export type ServiceSettings = {
  env: Record<string, string>;
  /** API replicas, each on its own port (the first on env.PORT, the others on free ports). */
  apis: number;
  workers: number;
  logDir: string;
  /** Directory for `--cpu-prof` profiles of the API and the first worker; none when null. */
  profileDir: string | null;
  /** The checkout to run (default this one; --baseline runs another commit's). */
  root?: string;
  /** Start no worker yet: `startWorkers()` does, later (the drain fills the queue first). */
  deferWorkers?: boolean;
};

export type RunningServices = {
  /** One base URL per API replica. */
  urls: string[];
  pids: { apis: number[]; workers: number[] };
  /** Whether the workers run (false until `startWorkers()` with `deferWorkers`). */
  readonly workersStarted: boolean;
  /** Starts the workers and resolves once BullMQ counts them all; nothing when they run already. */
  startWorkers: () => Promise<void>;
  stop: () => Promise<void>;
};

const READY_MS = 60_000;

export async function startServices(settings: ServiceSettings): Promise<RunningServices> {
  const registry = new ProcessRegistry(settings.env, true, settings.root);
  const options = (name: string, profile: boolean) => ({
    name,
    logFile: path.join(settings.logDir, `${name}.log`),
    // One folder per process: tsx's loader runs in a worker thread that writes a profile of its
    // own, so a fixed --cpu-prof-name would be overwritten by it. The main thread's is the largest.
    nodeArgs: profile && settings.profileDir ? ['--cpu-prof', `--cpu-prof-dir=${path.join(settings.profileDir, name)}`] : [],
  });
  const apis: ServiceProcess[] = [];
  const workers: ServiceProcess[] = [];
  const stop = async () => {
    // The API first (stop accepting), then the workers drain; each has its own graceful shutdown.
    await Promise.all(apis.map((api) => api.stop('SIGTERM', 30_000)));
    await Promise.all(workers.map((worker) => worker.stop('SIGTERM', 30_000)));
    await registry.stopAll();
  };
  const pids: RunningServices['pids'] = { apis: [], workers: [] };
  // Each worker serves its metrics on its own port (0: the OS picks), as on a host with several workers;
  // the bench's log level hides "worker started", so readiness is BullMQ's count of registered workers.
  const startWorkers = async () => {
    if (workers.length > 0) return;
    const redis = new Redis(settings.env.REDIS_URL!, { maxRetriesPerRequest: 1 });
    const queue = openQueue(QUEUES.bookings, redis, settings.env.QUEUE_PREFIX!);
    try {
      for (let i = 0; i < settings.workers; i++) {
        workers.push(registry.spawn('worker', { WORKER_METRICS_PORT: String(await freePort()) }, options(`worker-${i + 1}`, i === 0)));
      }
      pids.workers.push(...workers.map((w) => w.pid));
      await waitUntil(
        'workers registered',
        async () => {
          const dead = [...apis, ...workers].find((service) => !service.running);
          if (dead) throw new Error(`${dead.name} exited early (${JSON.stringify(dead.exit)})`);
          return (await queue.getWorkersCount()) >= settings.workers;
        },
        READY_MS,
      );
    } finally {
      await queue.close();
      redis.disconnect();
    }
  };
  try {
    // Replicas behind a balancer in production; here the generator spreads its connections over them.
    for (let i = 0; i < settings.apis; i++) {
      const name = settings.apis === 1 ? 'api' : `api-${i + 1}`;
      const port: Record<string, string> = i === 0 ? { PORT: settings.env.PORT! } : {};
      apis.push(await registry.startApi(port, READY_MS, { ...options(name, i === 0), readyPath: '/ready' }));
    }
    pids.apis.push(...apis.map((api) => api.pid));
    if (!settings.deferWorkers) await startWorkers();
  } catch (error) {
    await stop();
    throw new Error(`${(error as Error).message}\n${registry.tails()}`, { cause: error });
  }
  return {
    urls: apis.map((api) => api.url!),
    pids,
    get workersStarted() {
      return workers.length > 0;
    },
    startWorkers: async () => {
      try {
        await startWorkers();
      } catch (error) {
        throw new Error(`${(error as Error).message}\n${registry.tails()}`, { cause: error });
      }
    },
    stop,
  };
}

/** Runs the migrations of the checkout at `root` (`services/migrate.ts`, as `npm run migrate` does) with `env`. */
export async function migrateWith(root: string, env: Record<string, string>, logDir: string): Promise<void> {
  const registry = new ProcessRegistry(env, true, root);
  const migrate = registry.spawn('migrate', {}, { name: 'migrate', logFile: path.join(logDir, 'migrate-baseline.log') });
  const exit = await migrate.exited;
  await registry.stopAll();
  if (exit.code !== 0) throw new Error(`the baseline's migrations failed (${JSON.stringify(exit)})\n${migrate.tail()}`);
}
