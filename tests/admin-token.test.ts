import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { shareGeneratedToken } from '../services/api/admin-token.js';
import { createLogger } from '../shared/logger.js';
import { openTestContext, openTestProcesses } from './support/context.js';
import type { ServiceProcess } from './support/processes.js';
import { tempDir } from './support/temp-dir.js';

/**
 * A generated admin token never reaches the log stream. The services run as operators run
 * them, with stdout and stderr piped (not terminals, as under systemd, docker or `> log`):
 * the token goes to a file only its owner can read, and the output names the file.
 */

const ctx = await openTestContext();
const dir = tempDir('admin-token-');
const processes = openTestProcesses(ctx, { LOG_LEVEL: 'info' });

async function expectTokenOnlyInFile(start: (overrides: Record<string, string>) => Promise<ServiceProcess>, name: string): Promise<void> {
  const file = join(dir, name, 'admin-token');
  const service = await start({ ADMIN_TOKEN: '', ADMIN_TOKEN_FILE: file });
  const notice = await service.waitForLine('ADMIN_TOKEN not set', 20_000);
  expect(notice).toContain(file);

  expect(existsSync(file)).toBe(true);
  expect(statSync(file).mode & 0o777).toBe(0o600);
  const token = readFileSync(file, 'utf8').trim();
  expect(token).toMatch(/^[A-Za-z0-9_-]{32}$/);
  // It is the token the API checks.
  const created = await fetch(`${service.url}/admin/shows`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'Token check', start_time: '2030-01-01T20:00:00Z', total_seats: 1 }),
  });
  expect(created.status).toBe(201);

  // Everything the process wrote, both streams, up to its exit.
  await service.stop('SIGTERM');
  expect(service.linesMatching(token)).toEqual([]);
  expect(service.linesMatching('Admin token for this run')).toEqual([]);
}

describe('generated admin token', () => {
  it('the API entry keeps it out of stdout and stderr when they are not terminals', async () => {
    await expectTokenOnlyInFile((overrides) => processes.startApi(overrides), 'api');
  });

  it('`npm start` keeps it out of stdout and stderr when they are not terminals', async () => {
    await expectTokenOnlyInFile((overrides) => processes.startAllInOne(overrides), 'all');
  });

  it('is written to stderr, not the log, when stderr is a terminal', async () => {
    const logged: string[] = [];
    const logger = createLogger({ LOG_LEVEL: 'info' }, 'api', { write: (line: string) => void logged.push(line) });
    const written: string[] = [];
    const terminal = { isTTY: true, write: (text: string) => written.push(text) > 0 } as unknown as NodeJS.WriteStream;
    const file = join(dir, 'tty', 'admin-token');
    await shareGeneratedToken('tty-token-0123456789abcdef', { ADMIN_TOKEN_FILE: file }, logger, terminal);
    expect(written.join('')).toContain('Admin token for this run: tty-token-0123456789abcdef');
    expect(logged).toHaveLength(1);
    expect(logged.join('')).not.toContain('tty-token-0123456789abcdef');
    expect(existsSync(file)).toBe(false);
  });
});
