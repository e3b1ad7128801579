import { sweepLapsedHolds, type ExpiryResult } from '../../../shared/booking/expire.js';
import type { Database } from '../../../shared/db/client.js';
import type { Logger } from '../../../shared/logger.js';

/** The scheduled sweep: lapsed holds become EXPIRED and their seats AVAILABLE. */
export function createExpireHoldsProcessor(deps: { db: Database; logger: Logger; onSwept?: (released: ExpiryResult) => void }) {
  return async function expireHolds(): Promise<ExpiryResult> {
    const released = await sweepLapsedHolds(deps.db);
    if (released.bookings > 0) deps.logger.info(released, 'expired lapsed holds');
    deps.onSwept?.(released);
    return released;
  };
}
