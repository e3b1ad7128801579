import { sweepLapsedHolds, type ExpiryResult } from '../../../shared/booking/expire.js';
import { SWEEP_BATCH_SIZE } from '../../../shared/booking/sql/holds.js';
import { keepWaitlists, type Offer, type WaitlistSettings } from '../../../shared/booking/waitlist.js';
import type { Database } from '../../../shared/db/client.js';
import type { ChangePublisher } from '../../../shared/live/changes.js';
import type { Logger } from '../../../shared/logger.js';

/**
 * The scheduled sweep: lapsed holds become EXPIRED and their seats AVAILABLE (offered to the
 * show's waiting list first, in the same transaction); then the waiting lists are kept: lists of
 * shows whose sales have closed fail their entries, and free seats an entry fits are offered (a
 * pass that could not serve at once, e.g. seats locked by a claim at that moment, is caught up
 * here). What each committed transaction changed (expiries, offers) is published for live
 * updates (fire and forget: a failed publish fails no sweep).
 */
/** An offer as a live update: the entry is HELD now. */
const offerChange = (offer: Offer) => ({ id: offer.bookingId, status: 'HELD' as const, showId: offer.showId, seats: offer.seats });

export function createExpireHoldsProcessor(deps: {
  db: Database;
  logger: Logger;
  waitlist: WaitlistSettings;
  onSwept?: (released: ExpiryResult) => void;
  changes?: ChangePublisher;
}) {
  return async function expireHolds(): Promise<ExpiryResult> {
    const released = await sweepLapsedHolds(
      deps.db,
      deps.waitlist,
      SWEEP_BATCH_SIZE,
      (holds) => deps.changes?.publishBookings(holds.map((hold) => ({ ...hold, status: 'EXPIRED' as const }))),
      (offers) => deps.changes?.publishBookings(offers.map(offerChange)),
    );
    if (released.bookings > 0) deps.logger.info(released, 'expired lapsed holds');
    deps.onSwept?.(released);
    const upkeep = await keepWaitlists(deps.db, deps.waitlist);
    if (upkeep.offers.length > 0 || upkeep.failed.length > 0) {
      deps.logger.info({ offers: upkeep.offers.length, failed: upkeep.failed.length }, 'kept waiting lists');
      deps.changes?.publishBookings(upkeep.offers.map(offerChange));
    }
    return released;
  };
}
