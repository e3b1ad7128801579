import { randomBytes } from 'node:crypto';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { ConfigError, type Config } from '../../shared/config.js';
import type { Logger } from '../../shared/logger.js';

/** Outside production a missing ADMIN_TOKEN is generated for this run (and shared by `shareGeneratedToken`). */
export function resolveAdminToken(config: Config): { token: string; generated: boolean } {
  if (config.ADMIN_TOKEN) return { token: config.ADMIN_TOKEN, generated: false };
  // Only the API checks this: workers and migrations never use the token.
  if (config.NODE_ENV === 'production') {
    throw new ConfigError('Invalid configuration:\n  ADMIN_TOKEN: required when NODE_ENV=production');
  }
  return { token: randomBytes(24).toString('base64url'), generated: true };
}

/**
 * Hands a generated token to the person who started the process, and to no log. stdout
 * carries the JSON log lines (and is often a file or a log shipper), so the token is written
 * only to a terminal: stderr when it is one. Otherwise (output piped or redirected) it goes
 * to ADMIN_TOKEN_FILE, readable by this user only, and the log says where, never what.
 */
export async function shareGeneratedToken(
  token: string,
  config: Pick<Config, 'ADMIN_TOKEN_FILE'>,
  logger: Logger,
  terminal: NodeJS.WriteStream = process.stderr,
): Promise<void> {
  const hint = 'set ADMIN_TOKEN (at least 16 characters) to choose your own';
  if (terminal.isTTY) {
    terminal.write(`\nAdmin token for this run: ${token}\n(${hint})\n\n`);
    logger.warn(`ADMIN_TOKEN not set: generated a token for this run and printed it to the terminal; ${hint}`);
    return;
  }
  const file = resolve(config.ADMIN_TOKEN_FILE);
  try {
    await mkdir(dirname(file), { recursive: true, mode: 0o700 });
    await writeFile(file, `${token}\n`, { mode: 0o600 });
    // `mode` applies only when the file is created: a file left by an earlier run keeps its own.
    await chmod(file, 0o600);
    logger.warn({ file }, `ADMIN_TOKEN not set: the token generated for this run is in ${file}; ${hint}`);
  } catch (error) {
    logger.warn({ file, err: error instanceof Error ? error.message : String(error) }, `ADMIN_TOKEN not set and the generated token could not be saved; ${hint}`);
  }
}
