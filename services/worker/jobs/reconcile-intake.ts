import type { Logger } from '../../../shared/logger.js';
import type { RequestIndex } from '../../../shared/queue/request-index.js';

/**
 * The scheduled recount of the intake's line: the counters load shedding reads drift when a
 * markTaken is lost with Redis or jobs are removed, and only ever upwards, until the API
 * refuses bookings with a false QUEUE_FULL. This sets them from the queue's real state.
 */
export function createReconcileIntakeProcessor(deps: { index: RequestIndex; logger: Logger }) {
  return async function reconcileIntake(): Promise<{ was: number; now: number }> {
    const line = await deps.index.reconcile();
    if (line.was !== line.now) deps.logger.info(line, 'intake line recounted from the queue: the counters had drifted');
    return line;
  };
}
