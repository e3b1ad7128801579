import { loadConfig } from '../shared/config.js';
import { runMigrations } from '../shared/db/migrate.js';
import { createLogger } from '../shared/logger.js';
import { shareGeneratedToken } from './api/admin-token.js';
import { startApi } from './api/server.js';
import { closeInOrder, exitOnSignals, runMain } from './lifecycle.js';
import { startWorker } from './worker/worker.js';

/**
 * `npm start`: everything on one machine in one process, for trying it out and development.
 * Migrates, then runs the API and a worker. In production run `start:api` and `start:worker`
 * as separate processes and scale them independently.
 */
runMain(async () => {
  const config = loadConfig();
  const logger = createLogger(config, 'ticket-rush');
  await runMigrations(config.DATABASE_URL, logger);
  const worker = await startWorker(config, logger.child({ component: 'worker' }));
  const api = await startApi(config, logger.child({ component: 'api' }));
  // The API stops accepting first; then the worker drains what was accepted.
  exitOnSignals(closeInOrder([{ name: 'api', close: api.close }, { name: 'worker', close: worker.close }], logger), logger, config.SHUTDOWN_TIMEOUT_SECONDS);
  process.stdout.write(`\nTicket Rush is running at ${api.url}\nTry: curl ${api.url}/shows\n\n`);
  if (api.adminTokenGenerated) await shareGeneratedToken(api.adminToken, config, logger);
}, 'ticket-rush');
