import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { migrate } from 'drizzle-orm/node-postgres/migrator';
import pg from 'pg';
import type { Logger } from '../logger.js';
import { createDb } from './client.js';

/**
 * The committed migrations live in drizzle/ at the project root. This file runs as
 * shared/db/migrate.ts under tsx but as dist/shared/db/migrate.js once compiled (the Docker
 * image), one level deeper, so look in both places.
 */
function findMigrationsFolder(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const candidates = ['../../drizzle', '../../../drizzle'].map((relative) => path.resolve(here, relative));
  return candidates.find((folder) => existsSync(path.join(folder, 'meta', '_journal.json'))) ?? candidates[0]!;
}

export const MIGRATIONS_FOLDER = findMigrationsFolder();

/** Creates the database named in the URL when it does not exist (first `npm start` on a fresh machine). */
export async function ensureDatabase(connectionString: string, logger?: Logger): Promise<void> {
  const url = new URL(connectionString);
  const name = decodeURIComponent(url.pathname.replace(/^\//, ''));
  if (!name) throw new Error('DATABASE_URL names no database');
  const probe = new pg.Client({ connectionString });
  try {
    await probe.connect();
    return;
  } catch (error) {
    if ((error as { code?: string }).code !== '3D000') throw error; // 3D000: invalid_catalog_name
  } finally {
    await probe.end().catch(() => {});
  }
  url.pathname = '/postgres';
  const admin = new pg.Client({ connectionString: url.toString() });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
    logger?.info({ database: name }, 'created database');
  } catch (error) {
    if ((error as { code?: string }).code !== '42P04') throw error; // created meanwhile by another process
  } finally {
    await admin.end();
  }
}

/** Applies the committed drizzle migrations; safe to run from several processes at once. */
export async function runMigrations(connectionString: string, logger?: Logger): Promise<void> {
  await ensureDatabase(connectionString, logger);
  const { db, pool } = createDb({ connectionString, max: 1, applicationName: 'ticket-rush-migrate' });
  try {
    // drizzle's migrator takes no lock of its own; an advisory lock keeps concurrent
    // `npm run migrate` (e.g. several containers starting) from applying a migration twice.
    await db.execute('SELECT pg_advisory_lock(727274)');
    await migrate(db, { migrationsFolder: MIGRATIONS_FOLDER });
    logger?.info('migrations applied');
  } finally {
    await pool.end();
  }
}
