import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { startServices, type RunningServices } from '../bench/lib/services.js';
import { openTestContext } from './support/context.js';
import { freePort, serviceEnv } from './support/processes.js';
import { tempDir } from './support/temp-dir.js';

/**
 * The bench's services come from the tests' process harness (ProcessRegistry): API replicas on
 * their own ports answering /ready, workers registered with BullMQ, each process's output in its
 * own log file and --cpu-prof profiles of the first API and worker when asked.
 */

const ctx = await openTestContext();
const dir = tempDir('bench-services-');
let services: RunningServices | undefined;
afterAll(async () => services?.stop());

it('starts API replicas and workers with log files and profiles, and stops them', async () => {
  const logDir = dir;
  const profileDir = join(dir, 'profiles');
  const port = await freePort();
  services = await startServices({
    env: serviceEnv(ctx.config, { PORT: String(port), LOG_LEVEL: 'info', DB_POOL_SIZE: '2' }),
    apis: 2,
    workers: 1,
    logDir,
    profileDir,
  });
  expect(services.urls).toHaveLength(2);
  expect(services.urls[0]).toBe(`http://127.0.0.1:${port}`);
  for (const url of services.urls) expect((await fetch(`${url}/ready`)).status).toBe(200);
  expect(new Set([...services.pids.apis, ...services.pids.workers]).size).toBe(3);

  await services.stop();
  services = undefined;
  expect(readFileSync(join(logDir, 'api-1.log'), 'utf8')).toContain('"level"');
  expect(readFileSync(join(logDir, 'api-2.log'), 'utf8')).toContain('"level"');
  expect(readFileSync(join(logDir, 'worker-1.log'), 'utf8')).toContain('worker started');
  // Profiles are written at exit, one folder per profiled process (the first API and worker).
  expect(readdirSync(join(profileDir, 'api-1')).some((file) => file.endsWith('.cpuprofile'))).toBe(true);
  expect(readdirSync(join(profileDir, 'worker-1')).some((file) => file.endsWith('.cpuprofile'))).toBe(true);
  expect(readdirSync(profileDir).sort()).toEqual(['api-1', 'worker-1']);
}, 180_000);
