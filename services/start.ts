import { loadConfig } from '../shared/config.js';
import { runMigrations } from '../shared/db/migrate.js';
import { createLogger } from '../shared/logger.js';
import { shareGeneratedToken } from './api/admin-token.js';
import { startApi } from './api/server.js';
import { startDevServices } from './dev-services.js';
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
  // Nothing installed: start a local Postgres and Redis where the default URLs expect them.
  const devServices = await startDevServices(config, logger.child({ component: 'dev-services' }));
  let worker, api;
  try {
    await runMigrations(config.DATABASE_URL, logger);
    worker = await startWorker(config, logger.child({ component: 'worker' }));
    api = await startApi(config, logger.child({ component: 'api' }));
  } catch (error) {
    // What this process started must not outlive a failed start.
    await worker?.close();
    await devServices.stop();
    throw error;
  }
  // The API stops accepting first; then the worker drains what was accepted.
  exitOnSignals(
    closeInOrder(
      [
        { name: 'api', close: api.close },
        { name: 'worker', close: worker.close },
        { name: 'dev services', close: devServices.stop },
      ],
      logger,
    ),
    logger,
    config.SHUTDOWN_TIMEOUT_SECONDS,
  );
  process.stdout.write(`\nTicket Rush is running at ${api.url}\nTry: curl ${api.url}/shows\n\n`);
  if (api.adminTokenGenerated) await shareGeneratedToken(api.adminToken, config, logger);
}, 'ticket-rush');
