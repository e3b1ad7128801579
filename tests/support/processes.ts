import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Redis } from 'ioredis';
import type { Config } from '../../shared/config.js';

/**
 * Real services as separate OS processes, for the chaos tests and the bench (bench/lib/services.ts):
 * the API and workers started the
 * way operators start them (`node --import tsx services/...`, with the Node flags of their
 * `npm run start:<kind>` script), a test-owned redis-server, and
 * a registry that kills whatever is left when the test file ends (or the test process dies).
 * Readiness is always a condition (a log line, a 200 from /health, a PONG), never a sleep.
 */

const ROOT = resolve(import.meta.dirname, '../..');
const ENTRY = { api: 'services/api/server.ts', worker: 'services/worker/worker.ts', all: 'services/start.ts', migrate: 'services/migrate.ts' } as const;
const KEPT_LINES = 2_000;

export type ServiceKind = keyof typeof ENTRY;

/** How one service is started, beyond its environment. */
export type SpawnOptions = {
  /** Its name in tails and errors (default: kind and a counter). */
  name?: string;
  /** Also write everything it prints to this file. */
  logFile?: string;
  /** Node flags before the entry, e.g. --cpu-prof. */
  nodeArgs?: string[];
};
export type Exit = { code: number | null; signal: NodeJS.Signals | null; at: number };

/**
 * The Node flags a service runs with in production (the API's young-generation size): those its
 * `start:<kind>` script in the checkout's package.json gives `node` before the entry, `--import
 * tsx` aside. Read from `root`, so a bench of another commit runs that commit's flags.
 */
export function productionNodeFlags(root: string, kind: ServiceKind): string[] {
  const scripts = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts?: Record<string, string> }).scripts ?? {};
  const words = (scripts[`start:${kind}`] ?? '').trim().split(/\s+/);
  if (words[0] !== 'node') return [];
  const flags: string[] = [];
  for (let i = 1; i < words.length && words[i]!.startsWith('--'); i++) {
    if (words[i] === '--import') i++;
    else flags.push(words[i]!);
  }
  return flags;
}

// Services' readiness is waited on the same way as everything else in the tests.
export { waitUntil } from './wait.js';
import { waitUntil } from './wait.js';

/** A port nobody listens on right now (the OS picks it; the short race is acceptable in tests). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const address = server.address();
  await new Promise((done) => server.close(done));
  if (!address || typeof address === 'string') throw new Error('no port');
  return address.port;
}

/** The environment a service process gets: the test's config as variables, plus overrides. */
export function serviceEnv(config: Config, overrides: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(config)) {
    if (value !== undefined) env[key] = String(value);
  }
  return { ...env, ...overrides };
}

/** One running service process with its recent output, for readiness checks and diagnosis. */
export class ServiceProcess {
  readonly exited: Promise<Exit>;
  exit: Exit | undefined;
  private readonly lines: string[] = [];
  private readonly watchers = new Set<(line: string) => void>();

  constructor(
    readonly name: string,
    readonly child: ChildProcess,
    readonly url: string | undefined,
  ) {
    this.exited = new Promise((done) => {
      child.once('exit', (code, signal) => {
        this.exit = { code, signal, at: Date.now() };
        done(this.exit);
      });
    });
    for (const stream of [child.stdout, child.stderr]) {
      let partial = '';
      stream?.setEncoding('utf8');
      stream?.on('data', (chunk: string) => {
        const parts = (partial + chunk).split('\n');
        partial = parts.pop() ?? '';
        for (const line of parts) this.record(line);
      });
    }
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get running(): boolean {
    return this.exit === undefined;
  }

  /** The last lines the process printed (logs), newest last. */
  tail(count = 40): string {
    return this.lines.slice(-count).join('\n');
  }

  /** Lines printed so far (up to the last few hundred) that contain `text`. */
  linesMatching(text: string): string[] {
    return this.lines.filter((line) => line.includes(text));
  }

  /** Resolves with the first line (past or future) containing `text`; rejects if the process exits first. */
  waitForLine(text: string, timeoutMs: number): Promise<string> {
    const seen = this.lines.find((line) => line.includes(text));
    if (seen) return Promise.resolve(seen);
    return new Promise((resolveLine, reject) => {
      const cleanup = () => {
        clearTimeout(timer);
        this.watchers.delete(watcher);
      };
      const watcher = (line: string) => {
        if (!line.includes(text)) return;
        cleanup();
        resolveLine(line);
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`${this.name}: no "${text}" within ${timeoutMs} ms\n${this.tail()}`));
      }, timeoutMs);
      this.watchers.add(watcher);
      void this.exited.then((exit) => {
        if (!this.watchers.has(watcher)) return;
        cleanup();
        reject(new Error(`${this.name} exited (${exit.code ?? exit.signal}) before "${text}"\n${this.tail()}`));
      });
    });
  }

  signal(signal: NodeJS.Signals): void {
    if (this.running) this.child.kill(signal);
  }

  /** Sends `signal` and waits for the exit; SIGKILL if it has not exited within `timeoutMs`. */
  async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 30_000): Promise<Exit> {
    if (!this.running) return this.exit!;
    this.child.kill(signal);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  private record(line: string): void {
    this.lines.push(line);
    if (this.lines.length > KEPT_LINES) this.lines.splice(0, this.lines.length - KEPT_LINES);
    for (const watcher of this.watchers) watcher(line);
  }
}

/** Everything a test file spawned; `stopAll()` in afterAll, and a last-resort SIGKILL on exit. */
export class ProcessRegistry {
  /** Every service this registry spawned, running or not, in start order. */
  readonly services: ServiceProcess[] = [];
  private readonly processes = new Set<{ pid: number; stop: () => Promise<unknown> }>();
  private counter = 0;
  private readonly onExit = () => {
    for (const entry of this.processes) {
      try {
        process.kill(entry.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  };

  /**
   * `inherit` passes this process's environment (e.g. NODE_OPTIONS) under `baseEnv`; tests leave
   * it off so that a service sees only the test's configuration. `root` is the checkout the
   * services run from (the bench's --baseline runs another commit's).
   */
  constructor(
    private readonly baseEnv: Record<string, string>,
    private readonly inherit = false,
    private readonly root = ROOT,
  ) {
    process.once('exit', this.onExit);
  }

  /** Starts the API on a free port (or PORT) and resolves once GET `readyPath` answers 200. */
  async startApi(overrides: Record<string, string> = {}, timeoutMs = 30_000, options: SpawnOptions & { readyPath?: string } = {}): Promise<ServiceProcess> {
    return this.startListening('api', overrides, timeoutMs, options);
  }

  /** Starts `npm start`'s entry (migrations, API and a worker in one process) like startApi. */
  async startAllInOne(overrides: Record<string, string> = {}, timeoutMs = 60_000): Promise<ServiceProcess> {
    return this.startListening('all', overrides, timeoutMs);
  }

  private async startListening(
    kind: 'api' | 'all',
    overrides: Record<string, string>,
    timeoutMs: number,
    { readyPath = '/health', ...options }: SpawnOptions & { readyPath?: string } = {},
  ): Promise<ServiceProcess> {
    const port = overrides.PORT ? Number(overrides.PORT) : await freePort();
    const url = `http://127.0.0.1:${port}`;
    const service = this.spawnService(kind, { ...overrides, PORT: String(port), HOST: '127.0.0.1' }, url, options);
    await waitUntil(
      `${service.name} ${readyPath}`,
      async () => {
        if (!service.running) throw new Error(`${service.name} exited: ${JSON.stringify(service.exit)}\n${service.tail()}`);
        const response = await fetch(`${url}${readyPath}`).catch(() => undefined);
        return response?.status === 200;
      },
      timeoutMs,
    ).catch((error: Error) => {
      service.signal('SIGKILL');
      throw new Error(`${error.message}\n${service.tail()}`);
    });
    return service;
  }

  /** Starts a worker and resolves once it logs "worker started" (needs LOG_LEVEL info or lower). */
  async startWorker(overrides: Record<string, string> = {}, timeoutMs = 30_000, options: SpawnOptions = {}): Promise<ServiceProcess> {
    const service = this.spawnService('worker', { LOG_LEVEL: 'info', ...overrides }, undefined, options);
    try {
      await service.waitForLine('"msg":"worker started"', timeoutMs);
    } catch (error) {
      service.signal('SIGKILL');
      throw error;
    }
    return service;
  }

  /** Starts a service without waiting for it; the caller decides what "ready" means. */
  spawn(kind: ServiceKind, overrides: Record<string, string> = {}, options: SpawnOptions = {}): ServiceProcess {
    return this.spawnService(kind, overrides, undefined, options);
  }

  /** Registers a process this registry did not spawn (e.g. a redis-server) for cleanup. */
  track(entry: { pid: number; stop: () => Promise<unknown> }): () => void {
    this.processes.add(entry);
    return () => this.processes.delete(entry);
  }

  /** Each service's first error lines and recent output, for a failing test's report. */
  tails(lines = 15): string {
    return this.services
      .map((service) => {
        const errors = service.linesMatching('"level":50').slice(0, 5).join('\n');
        const header = `--- ${service.name} (pid ${service.pid}, exit ${JSON.stringify(service.exit ?? null)})`;
        return `${header}\n${errors ? `first errors:\n${errors}\nlast lines:\n` : ''}${service.tail(lines)}`;
      })
      .join('\n');
  }

  async stopAll(): Promise<void> {
    const all = [...this.processes];
    this.processes.clear();
    await Promise.all(all.map((entry) => entry.stop().catch(() => {})));
    process.off('exit', this.onExit);
  }

  private spawnService(kind: ServiceKind, overrides: Record<string, string>, url: string | undefined, options: SpawnOptions = {}): ServiceProcess {
    ++this.counter;
    const name = options.name ?? `${kind}-${this.counter}`;
    const env = {
      ...(this.inherit ? process.env : {}),
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      TMPDIR: process.env.TMPDIR ?? tmpdir(),
      ...this.baseEnv,
      ...overrides,
    };
    const args = [...productionNodeFlags(this.root, kind), '--import', 'tsx', ...(options.nodeArgs ?? []), ENTRY[kind]];
    const child = spawn(process.execPath, args, { cwd: this.root, env, stdio: ['ignore', 'pipe', 'pipe'] });
    if (options.logFile) {
      const log = createWriteStream(options.logFile);
      child.stdout!.pipe(log);
      child.stderr!.pipe(log);
    }
    const service = new ServiceProcess(name, child, url);
    this.services.push(service);
    const entry = { pid: service.pid, stop: () => service.stop('SIGKILL', 5_000) };
    this.processes.add(entry);
    void service.exited.then(() => this.processes.delete(entry));
    return service;
  }
}

/**
 * A redis-server owned by one test: its own port and data directory, configured the way
 * production must be (AOF fsynced on every write, no eviction), so it can be killed with
 * SIGKILL and restarted on the same data.
 */
export class RedisServer {
  readonly dir: string;
  private child: ChildProcess | undefined;
  private exitedPromise: Promise<void> = Promise.resolve();
  private untrack: (() => void) | undefined;

  private constructor(
    readonly port: number,
    private readonly registry: ProcessRegistry,
    private readonly password: string | undefined,
    private readonly extraArgs: string[],
  ) {
    this.dir = mkdtempSync(join(tmpdir(), 'chaos-redis-'));
  }

  /**
   * `password` turns on requirepass, for tests that the whole URL (credentials too) is used;
   * `port` is for a service already told to expect Redis there; `args` override the settings
   * (e.g. a maxmemory-policy the services must refuse).
   */
  static async start(registry: ProcessRegistry, options: { password?: string; port?: number; args?: string[] } = {}): Promise<RedisServer> {
    const server = new RedisServer(options.port ?? (await freePort()), registry, options.password, options.args ?? []);
    await server.launch();
    return server;
  }

  get url(): string {
    const credentials = this.password ? `:${encodeURIComponent(this.password)}@` : '';
    return `redis://${credentials}127.0.0.1:${this.port}`;
  }

  get pid(): number {
    return this.child?.pid ?? -1;
  }

  /** kill -9: no shutdown, no final save; only what the AOF already holds survives. */
  async kill9(): Promise<void> {
    this.child?.kill('SIGKILL');
    await this.exitedPromise;
  }

  /** Starts again on the same port and directory, and waits until the AOF is loaded. */
  async restart(): Promise<void> {
    await this.launch();
  }

  async stop(): Promise<void> {
    this.child?.kill('SIGKILL');
    await this.exitedPromise;
    this.untrack?.();
    rmSync(this.dir, { recursive: true, force: true });
  }

  private async launch(): Promise<void> {
    const args = [
      '--port', String(this.port),
      '--bind', '127.0.0.1',
      '--dir', this.dir,
      '--appendonly', 'yes',
      '--appendfsync', 'always',
      '--maxmemory-policy', 'noeviction',
      '--save', '',
      '--logfile', '',
      ...(this.password ? ['--requirepass', this.password] : []),
      ...this.extraArgs,
    ];
    const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout?.resume();
    child.stderr?.resume();
    this.child = child;
    this.exitedPromise = new Promise((done) => child.once('exit', () => done()));
    this.untrack?.();
    this.untrack = this.registry.track({ pid: child.pid ?? -1, stop: () => this.stop() });
    await waitUntil(
      `redis-server on ${this.port}`,
      async () => {
        if (child.exitCode !== null) throw new Error(`redis-server exited with ${child.exitCode}`);
        const probe = new Redis(this.url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 1_000 });
        probe.on('error', () => {});
        try {
          await probe.connect();
          // PING answers LOADING while the AOF is replayed; a write proves it is ready.
          return (await probe.set('chaos:probe', '1')) === 'OK';
        } finally {
          probe.disconnect();
        }
      },
      15_000,
    );
  }
}
