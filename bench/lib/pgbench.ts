import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

/**
 * The machine's own yardstick: pgbench's simple-update script (`-N`: one small update, a select
 * and an insert per transaction, each committed) against the same Postgres, in the same run.
 * Its TPS is roughly what this machine can commit in short write transactions; a booking
 * pipeline that commits one transaction per decision cannot beat it without batching.
 */

const run = promisify(execFile);

export type PgbenchSettings = { url: string; database: string; scale: number; clients: number; threads: number; seconds: number };
export type PgbenchResult = { tps: number; command: string; latencyMs: number | null };

function connectionArgs(url: string): { args: string[]; env: Record<string, string> } {
  const parsed = new URL(url);
  const args = ['-h', parsed.hostname, '-p', parsed.port || '5432', '-U', decodeURIComponent(parsed.username || 'postgres')];
  return { args, env: parsed.password ? { PGPASSWORD: decodeURIComponent(parsed.password) } : {} };
}

export async function runPgbench(settings: PgbenchSettings): Promise<PgbenchResult> {
  const { args, env } = connectionArgs(settings.url);
  const options = { env: { ...process.env, ...env }, maxBuffer: 16 * 1024 * 1024 };
  await run('dropdb', [...args, '--if-exists', '--force', settings.database], options);
  await run('createdb', [...args, settings.database], options);
  await run('pgbench', [...args, '-i', '-q', '-s', String(settings.scale), settings.database], options);
  const benchArgs = ['-N', '-c', String(settings.clients), '-j', String(settings.threads), '-T', String(settings.seconds), settings.database];
  const { stdout } = await run('pgbench', [...args, ...benchArgs], options);
  const tps = /tps = ([\d.]+) \(without initial connection time\)/.exec(stdout)?.[1];
  const latency = /latency average = ([\d.]+) ms/.exec(stdout)?.[1];
  if (!tps) throw new Error(`could not read pgbench's TPS from:\n${stdout}`);
  await run('dropdb', [...args, '--if-exists', '--force', settings.database], options);
  return { tps: Number(tps), latencyMs: latency ? Number(latency) : null, command: `pgbench ${benchArgs.slice(0, -1).join(' ')}` };
}
