import pg from 'pg';
import { runMigrations } from '../../shared/db/migrate.js';
import { UsageError } from './options.js';

/** Drops and recreates the database of `url` through `migrate` (by default this tree's migrations); returns its name. */
export async function recreateDatabase(url: string, migrate: (url: string) => Promise<unknown> = runMigrations): Promise<string> {
  const target = new URL(url);
  const name = decodeURIComponent(target.pathname.slice(1));
  if (!/^[a-z0-9_]+$/.test(name)) throw new UsageError(`--database-url: database name "${name}" must be lowercase letters, digits and _`);
  const admin = new URL(url);
  admin.pathname = '/postgres';
  const client = new pg.Client({ connectionString: admin.toString() });
  await client.connect();
  try {
    await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  } finally {
    await client.end();
  }
  await migrate(url);
  return name;
}
