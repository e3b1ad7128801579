import type { Logger } from '../shared/logger.js';

export type Closer = { name: string; close: () => Promise<unknown> };

/**
 * Closes resources in order, each in its own try/catch so one failure does not keep the rest
 * open. Idempotent: a second call returns the first call's promise.
 */
export function closeInOrder(closers: Closer[], logger: Logger): () => Promise<void> {
  let closing: Promise<void> | undefined;
  return () => {
    closing ??= (async () => {
      for (const closer of closers) {
        try {
          await closer.close();
        } catch (error) {
          logger.warn({ err: error, resource: closer.name }, 'error while closing');
        }
      }
    })();
    return closing;
  };
}

/**
 * SIGTERM/SIGINT: close gracefully within `timeoutSeconds`, then exit. A second signal, or the
 * deadline, forces the exit (in-flight jobs are then picked up again by another worker as
 * stalled jobs, and are idempotent).
 */
export function exitOnSignals(close: () => Promise<void>, logger: Logger, timeoutSeconds: number): void {
  let signalled = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (signalled) {
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    signalled = true;
    logger.info({ signal, timeoutSeconds }, 'shutting down');
    const deadline = setTimeout(() => {
      logger.error('shutdown deadline passed: exiting with work unfinished');
      process.exit(1);
    }, timeoutSeconds * 1_000);
    deadline.unref();
    close().then(
      () => {
        logger.info('shut down cleanly');
        process.exit(0);
      },
      (error) => {
        logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}

/** Runs an entry point's main, printing a clean message (no stack) for startup errors. */
export function runMain(main: () => Promise<void>, name: string): void {
  main().catch((error: unknown) => {
    const message = error instanceof Error ? error.message : String(error);
    process.stderr.write(`${name} failed to start: ${message}\n`);
    process.exit(1);
  });
}
