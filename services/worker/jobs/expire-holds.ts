import { sweepLapsedHolds, type ExpiryResult } from '../../../shared/booking/expire.js';
import { SWEEP_BATCH_SIZE } from '../../../shared/booking/sql/holds.js';
import type { Database } from '../../../shared/db/client.js';
import type { ChangePublisher } from '../../../shared/live/changes.js';
import type { Logger } from '../../../shared/logger.js';

/**
 * The scheduled sweep: lapsed holds become EXPIRED and their seats AVAILABLE. Each committed
 * batch is published for live updates (fire and forget: a failed publish fails no sweep).
 */
export function createExpireHoldsProcessor(deps: {
  db: Database;
  logger: Logger;
  onSwept?: (released: ExpiryResult) => void;
  changes?: ChangePublisher;
}) {
  return async function expireHolds(): Promise<ExpiryResult> {
    const released = await sweepLapsedHolds(deps.db, SWEEP_BATCH_SIZE, (holds) =>
      deps.changes?.publishBookings(holds.map((hold) => ({ ...hold, status: 'EXPIRED' as const }))),
    );
    if (released.bookings > 0) deps.logger.info(released, 'expired lapsed holds');
    deps.onSwept?.(released);
    return released;
  };
}
