import { readdirSync, readFileSync } from 'node:fs';
import type { Redis } from 'ioredis';
import type pg from 'pg';

/**
 * Where the time goes during a scenario, without a profiler in the path:
 * - CPU seconds of each of our processes (API, workers, the generator itself), of the Postgres
 *   backends serving the bench database, of all Postgres processes and of Redis;
 * - what Postgres backends of the bench database were doing, sampled every 100 ms from
 *   pg_stat_activity (on CPU, waiting on a lock, on WAL, or idle in transaction, i.e. waiting
 *   for the worker's next statement);
 * - transactions and tuples of the bench database, WAL written and flushed;
 * - Redis command time by command (INFO commandstats).
 * Postgres and Redis are shared with whatever else runs on this machine; the machine-wide
 * figures include it and are labelled so.
 */

const TICK_MS = 10; // /proc times are in clock ticks of 1/100 s on Linux (getconf CLK_TCK)

export function processCpuMs(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the ")" closing the command name; utime and stime are fields 14 and 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) * TICK_MS;
  } catch {
    return null;
  }
}

function machineCpu(): { busyMs: number; totalMs: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
  const values = line.trim().split(/\s+/).slice(1).map(Number);
  const idle = (values[3] ?? 0) + (values[4] ?? 0);
  const total = values.slice(0, 8).reduce((sum, v) => sum + v, 0);
  return { busyMs: (total - idle) * TICK_MS, totalMs: total * TICK_MS };
}

function allProcessesNamed(name: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/comm`, 'utf8').trim() === name) pids.push(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  return pids;
}

function cpuOf(pids: number[]): Map<number, number> {
  const result = new Map<number, number>();
  for (const pid of pids) {
    const ms = processCpuMs(pid);
    if (ms !== null) result.set(pid, ms);
  }
  return result;
}

/** CPU used between two readings; processes that appeared meanwhile count from zero. */
function delta(before: Map<number, number>, after: Map<number, number>): number {
  let total = 0;
  for (const [pid, ms] of after) total += ms - (before.get(pid) ?? 0);
  return total;
}

async function redisCpuMs(redis: Redis): Promise<number> {
  const info = await redis.info('cpu');
  const read = (key: string) => Number(new RegExp(`${key}:([\\d.]+)`).exec(info)?.[1] ?? 0);
  return (read('used_cpu_user') + read('used_cpu_sys')) * 1_000;
}

async function redisCommandStats(redis: Redis): Promise<Map<string, { calls: number; usec: number }>> {
  const info = await redis.info('commandstats');
  const stats = new Map<string, { calls: number; usec: number }>();
  for (const match of info.matchAll(/cmdstat_([^:]+):calls=(\d+),usec=(\d+)/g)) {
    stats.set(match[1]!, { calls: Number(match[2]), usec: Number(match[3]) });
  }
  return stats;
}

type PgCounters = Record<string, number>;

async function pgCounters(db: pg.Pool, database: string): Promise<PgCounters> {
  const { rows } = await db.query(
    `SELECT xact_commit, xact_rollback, tup_inserted, tup_updated, tup_fetched, blks_read, blks_hit, deadlocks,
            (SELECT wal_records FROM pg_stat_wal) AS wal_records, (SELECT wal_bytes FROM pg_stat_wal) AS wal_bytes,
            (SELECT wal_write FROM pg_stat_wal) AS wal_write, (SELECT wal_sync FROM pg_stat_wal) AS wal_sync
     FROM pg_stat_database WHERE datname = $1`,
    [database],
  );
  return Object.fromEntries(Object.entries(rows[0] ?? {}).map(([key, value]) => [key, Number(value)]));
}

async function backendPids(db: pg.Pool, database: string): Promise<number[]> {
  const { rows } = await db.query(`SELECT pid FROM pg_stat_activity WHERE datname = $1 AND backend_type = 'client backend'`, [database]);
  return rows.map((row: { pid: number }) => row.pid);
}

export type MonitorResult = {
  wallSeconds: number;
  cpuSeconds: Record<string, number>;
  machineBusyPercent: number;
  /**
   * CPU seconds the machine spent on everything but this benchmark (other users' processes,
   * other databases' backends): the noise indicator. Redis is counted as the benchmark's.
   */
  otherCpuSeconds: number;
  machineCpuSeconds: number;
  /** Average number of bench-database backends in each state/wait (sampled every 100 ms). */
  postgresActivity: Record<string, number>;
  postgresSamples: number;
  postgres: PgCounters;
  redisTopCommands: Array<{ command: string; calls: number; ms: number; usPerCall: number }>;
};

export class SystemMonitor {
  private readonly activity = new Map<string, number>();
  private samples = 0;
  private sampler: NodeJS.Timeout | undefined;
  private sampling = false;
  private before!: {
    at: number;
    ours: Map<string, number | null>;
    backends: Map<number, number>;
    postgresAll: Map<number, number>;
    machine: { busyMs: number; totalMs: number };
    redisCpu: number;
    redisCommands: Map<string, { calls: number; usec: number }>;
    pg: PgCounters;
    generatorMs: number;
  };

  constructor(
    private readonly db: pg.Pool,
    private readonly redis: Redis,
    private readonly database: string,
    private readonly processes: Record<string, number>,
  ) {}

  /** A process started after `start()` (the drain's workers): its CPU counts from its birth. */
  watch(name: string, pid: number): void {
    this.processes[name] = pid;
    this.before.ours.set(name, 0);
  }

  async start(): Promise<void> {
    const usage = process.cpuUsage();
    this.before = {
      at: Date.now(),
      ours: new Map(Object.entries(this.processes).map(([name, pid]) => [name, processCpuMs(pid)])),
      backends: cpuOf(await backendPids(this.db, this.database)),
      postgresAll: cpuOf(allProcessesNamed('postgres')),
      machine: machineCpu(),
      redisCpu: await redisCpuMs(this.redis),
      redisCommands: await redisCommandStats(this.redis),
      pg: await pgCounters(this.db, this.database),
      generatorMs: (usage.user + usage.system) / 1_000,
    };
    this.sampler = setInterval(() => void this.sample(), 100);
  }

  private async sample(): Promise<void> {
    if (this.sampling) return;
    this.sampling = true;
    try {
      // Which process owns each busy backend (application_name), and for lock waits, whose
      // transaction it waits for: that is what tells a slow client from a contended row.
      const { rows } = await this.db.query(
        `SELECT replace(a.application_name, 'ticket-rush-', '') AS app, a.state,
                coalesce(a.wait_event_type || ':' || a.wait_event, 'CPU') AS wait,
                CASE WHEN a.wait_event_type = 'Lock' THEN
                  (SELECT string_agg(DISTINCT replace(b.application_name, 'ticket-rush-', ''), '+')
                   FROM pg_stat_activity b WHERE b.pid = ANY(pg_blocking_pids(a.pid)))
                END AS blocked_by
         FROM pg_stat_activity a
         WHERE a.datname = $1 AND a.backend_type = 'client backend' AND a.pid <> pg_backend_pid()
           AND a.state IN ('active', 'idle in transaction')`,
        [this.database],
      );
      this.samples++;
      for (const row of rows as Array<{ app: string; state: string; wait: string; blocked_by: string | null }>) {
        const what =
          row.state === 'active'
            ? `active, ${row.wait}${row.blocked_by ? ` (behind a transaction of the ${row.blocked_by})` : ''}`
            : 'idle in transaction (waiting for its client)';
        const key = `${row.app || '?'}: ${what}`;
        this.activity.set(key, (this.activity.get(key) ?? 0) + 1);
      }
    } catch {
      // a missed sample is only a gap
    } finally {
      this.sampling = false;
    }
  }

  async stop(): Promise<MonitorResult> {
    clearInterval(this.sampler);
    const b = this.before;
    const usage = process.cpuUsage();
    const cpuSeconds: Record<string, number> = {};
    for (const [name, pid] of Object.entries(this.processes)) {
      const now = processCpuMs(pid);
      const then = b.ours.get(name);
      if (now !== null && then !== null && then !== undefined) cpuSeconds[name] = (now - then) / 1_000;
    }
    cpuSeconds['generator (this process)'] = ((usage.user + usage.system) / 1_000 - b.generatorMs) / 1_000;
    cpuSeconds['postgres backends of the bench database'] = delta(b.backends, cpuOf(await backendPids(this.db, this.database))) / 1_000;
    cpuSeconds['postgres, all processes (machine-wide)'] = delta(b.postgresAll, cpuOf(allProcessesNamed('postgres'))) / 1_000;
    cpuSeconds['redis-server (machine-wide)'] = ((await redisCpuMs(this.redis)) - b.redisCpu) / 1_000;
    const machine = machineCpu();
    const commands = await redisCommandStats(this.redis);
    const pgAfter = await pgCounters(this.db, this.database);
    const redisTopCommands = [...commands.entries()]
      .map(([command, after]) => {
        const then = b.redisCommands.get(command) ?? { calls: 0, usec: 0 };
        const calls = after.calls - then.calls;
        const usec = after.usec - then.usec;
        return { command, calls, ms: usec / 1_000, usPerCall: calls > 0 ? usec / calls : 0 };
      })
      .filter((c) => c.calls > 0)
      .sort((x, y) => y.ms - x.ms)
      .slice(0, 8);
    const machineCpuSeconds = (machine.busyMs - b.machine.busyMs) / 1_000;
    const ours =
      Object.entries(cpuSeconds)
        .filter(([name]) => !name.includes('machine-wide') || name.startsWith('redis'))
        .reduce((sum, [, seconds]) => sum + seconds, 0);
    return {
      wallSeconds: (Date.now() - b.at) / 1_000,
      machineCpuSeconds,
      otherCpuSeconds: Math.max(0, machineCpuSeconds - ours),
      cpuSeconds,
      machineBusyPercent: ((machine.busyMs - b.machine.busyMs) / Math.max(1, machine.totalMs - b.machine.totalMs)) * 100,
      postgresActivity: Object.fromEntries(
        [...this.activity.entries()].sort((x, y) => y[1] - x[1]).map(([key, n]) => [key, this.samples ? n / this.samples : 0]),
      ),
      postgresSamples: this.samples,
      postgres: Object.fromEntries(Object.entries(pgAfter).map(([key, value]) => [key, value - (b.pg[key] ?? 0)])),
      redisTopCommands,
    };
  }
}
