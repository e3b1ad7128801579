import type { DecideSettings } from '../../../shared/booking/decide.js';
import { getShow, seatStatuses } from '../../../shared/booking/shows.js';
import type { BookingStanding } from '../../../shared/booking/standing.js';
import type { Database } from '../../../shared/db/client.js';
import type { ChangeSubscriber } from '../../../shared/live/changes.js';
import type { Logger } from '../../../shared/logger.js';
import type { LineSizes } from '../../../shared/queue/line-size.js';
import { BookingWatch, type Standing } from './booking-watch.js';
import { availabilityOf, ShowWatch } from './show-watch.js';
import { StreamSlots } from './stream-slots.js';

/**
 * This API process's side of live updates: its one subscriber (shared/live/changes.ts), what
 * its streams watch (bookings, shows), the cap on open streams and the counts the metrics
 * read. Routes (routes/live.ts, the status poll's `Prefer: wait`) use it; the entry point
 * ends every stream at shutdown (`endAll`) before the server closes.
 */
export class LiveUpdates {
  readonly bookings: BookingWatch;
  readonly shows: ShowWatch;
  readonly slots: StreamSlots;
  /** Events sent by this process, by event name (a counter the metrics mirror). */
  readonly eventsSent = new Map<string, number>();

  constructor(
    private readonly subscriber: ChangeSubscriber,
    deps: {
      standing: BookingStanding;
      lineTaken: () => Promise<number>;
      db: Database;
      /** The environment's defaults for show views (per-show overrides win). */
      settings: DecideSettings;
      lines: Pick<LineSizes, 'of'>;
      maxStreams: number;
      logger: Logger;
    },
  ) {
    const onError = (error: unknown) => deps.logger.debug({ err: error instanceof Error ? error.message : error }, 'live update read failed; retrying');
    this.bookings = new BookingWatch({ standing: deps.standing, subscriber, lineTaken: deps.lineTaken, onError });
    this.shows = new ShowWatch({
      subscriber,
      readAvailability: async (showId) => {
        const [show, inLine] = await Promise.all([getShow(deps.db, showId, deps.settings), deps.lines.of(showId)]);
        return show ? availabilityOf({ ...show, in_line: inLine }) : null;
      },
      readSeats: (showId, labels) => seatStatuses(deps.db, showId, labels),
      onError,
    });
    this.slots = new StreamSlots(deps.maxStreams);
  }

  counted(event: string): void {
    this.eventsSent.set(event, (this.eventsSent.get(event) ?? 0) + 1);
  }

  /**
   * Waits until booking `id` leaves QUEUED (or is unknown), at most `ms`; resolves at once with
   * the latest answer when the process shuts down, and with 'no-slot' when at the stream cap.
   * Holds no Postgres connection meanwhile: a queued booking's reads are Redis reads.
   */
  waitWhileQueued(id: string, known: Standing, ms: number, abandoned: AbortSignal): Promise<Standing | 'no-slot'> {
    return new Promise((resolve) => {
      let latest = known;
      let done = false;
      const finish = () => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        unwatch();
        slot?.release();
        abandoned.removeEventListener('abort', finish);
        resolve(latest);
      };
      const slot = this.slots.acquire('wait', finish);
      if (!slot) {
        resolve('no-slot');
        return;
      }
      const timer = setTimeout(finish, ms);
      const unwatch = this.bookings.watch(id, (view) => {
        latest = view;
        if (view === 'unknown' || view.status !== 'QUEUED') finish();
      });
      abandoned.addEventListener('abort', finish);
    });
  }

  /** Shutdown, before the HTTP server closes: every stream ends, every waiting poll answers. */
  endAll(): void {
    this.slots.endAll();
  }

  async close(): Promise<void> {
    this.endAll();
    this.bookings.close();
    this.shows.close();
    await this.subscriber.close();
  }
}
