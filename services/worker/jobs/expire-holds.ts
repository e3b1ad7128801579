import { sweepLapsedHolds, type ExpiryResult } from '../../../shared/booking/expire.js';
import { keepWaitlists, type WaitlistSettings } from '../../../shared/booking/waitlist.js';
import type { Database } from '../../../shared/db/client.js';
import type { Logger } from '../../../shared/logger.js';

/**
 * The scheduled sweep: lapsed holds become EXPIRED and their seats AVAILABLE (offered to the
 * show's waiting list first); then the waiting lists are kept: lists of shows whose sales have
 * closed fail their entries, and free seats an entry fits are offered (a pass that could not
 * serve at once, e.g. seats locked by a claim at that moment, is caught up here).
 */
export function createExpireHoldsProcessor(deps: {
  db: Database;
  logger: Logger;
  waitlist: WaitlistSettings;
  onSwept?: (released: ExpiryResult) => void;
}) {
  return async function expireHolds(): Promise<ExpiryResult> {
    const released = await sweepLapsedHolds(deps.db, deps.waitlist);
    if (released.bookings > 0) deps.logger.info(released, 'expired lapsed holds');
    deps.onSwept?.(released);
    const upkeep = await keepWaitlists(deps.db, deps.waitlist);
    if (upkeep.offers.length > 0 || upkeep.failed.length > 0) {
      deps.logger.info({ offers: upkeep.offers.length, failed: upkeep.failed.length }, 'kept waiting lists');
    }
    return released;
  };
}
