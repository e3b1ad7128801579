import type { DecideSettings } from '../../../shared/booking/decide.js';
import { getShow, seatStatuses } from '../../../shared/booking/shows.js';
import type { BookingStanding } from '../../../shared/booking/standing.js';
import type { Database } from '../../../shared/db/client.js';
import type { ChangeSubscriber } from '../../../shared/live/changes.js';
import type { Logger } from '../../../shared/logger.js';
import type { LineSizes } from '../../../shared/queue/line-size.js';
import { BookingWatch, type Standing, type StandingListener } from './booking-watch.js';
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
   * A status poll's `Prefer: wait`, in two steps, so that it reads where the booking stands
   * once before waiting, not twice. `startWait` watches booking `id` and takes a stream slot
   * (null at the stream cap) before the caller's own read: a change made during that read is
   * then seen by the watch, and the watch needs no read of its own to close the gap. `until`
   * then waits, given the caller's answer, until the booking leaves QUEUED (or is unknown), at
   * most `ms`; it resolves at once with the latest answer when the process shuts down or the
   * client goes away. `cancel` ends a watch the caller no longer needs (its read failed, or the
   * booking was decided already). Holds no Postgres connection: a queued booking's reads are
   * Redis reads.
   */
  startWait(id: string): PollWait | null {
    let latest: Standing | undefined;
    let onView: StandingListener | undefined;
    let shutDown = false;
    let ended = false;
    let onShutdown = () => {
      shutDown = true;
    };
    const slot = this.slots.acquire('wait', () => onShutdown());
    if (!slot) return null;
    const unwatch = this.bookings.watch(
      id,
      (view) => {
        latest = view;
        onView?.(view);
      },
      { read: false },
    );
    const end = () => {
      if (ended) return;
      ended = true;
      unwatch();
      slot.release();
    };
    return {
      cancel: end,
      until: (known, ms, abandoned) =>
        new Promise((resolve) => {
          this.bookings.seed(id, known);
          // A read of the watch's own (after a change message) may be newer than the caller's;
          // a decision wins either way, being final for this wait.
          let last: Standing = decided(known) ? known : (latest ?? known);
          if (shutDown || abandoned.aborted || decided(last)) {
            end();
            resolve(last);
            return;
          }
          const finish = () => {
            clearTimeout(timer);
            abandoned.removeEventListener('abort', finish);
            end();
            resolve(last);
          };
          const timer = setTimeout(finish, ms);
          onShutdown = finish;
          onView = (view) => {
            last = view;
            if (decided(view)) finish();
          };
          abandoned.addEventListener('abort', finish);
        }),
    };
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

/** A waiting poll's watch (LiveUpdates.startWait). */
export type PollWait = {
  until: (known: Standing, ms: number, abandoned: AbortSignal) => Promise<Standing>;
  cancel: () => void;
};

/** Out of QUEUED, or unknown: nothing more to wait for. */
const decided = (view: Standing): boolean => view === 'unknown' || view.status !== 'QUEUED';
