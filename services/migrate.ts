import { loadConfig } from '../shared/config.js';
import { runMigrations } from '../shared/db/migrate.js';
import { createLogger } from '../shared/logger.js';
import { runMain } from './lifecycle.js';

/** `npm run migrate`: creates the database if missing and applies the committed migrations. */
runMain(async () => {
  const config = loadConfig();
  await runMigrations(config.DATABASE_URL, createLogger(config, 'migrate'));
}, 'migrate');
