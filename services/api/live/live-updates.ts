import type { DecideSettings } from '../../../shared/booking/decide.js';
import { getShow, seatStatuses } from '../../../shared/booking/shows.js';
import type { BookingStanding } from '../../../shared/booking/standing.js';
import type { Database } from '../../../shared/db/client.js';
import type { ChangeSubscriber } from '../../../shared/live/changes.js';
import type { Logger } from '../../../shared/logger.js';
import type { LineSizes } from '../../../shared/queue/line-size.js';
import { BookingWatch, type Standing, type StandingListener } from './booking-watch.js';
import { availabilityOf, ShowWatch } from './show-watch.js';
import { StreamSlots, type Slot } from './stream-slots.js';

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
   * A waiting answer's watch (`Prefer: wait` on a status poll or a booking request), in two
   * steps, so that it reads where the booking stands once before waiting, not twice.
   * `startWait` watches booking `id` and takes a stream slot (null at the stream cap) before the
   * caller's own read: a change made during that read is then seen by the watch, and the watch
   * needs no read of its own to close the gap. `until` then waits, given the caller's answer,
   * until the booking leaves QUEUED (or is unknown), at most `ms`; it resolves at once with the
   * latest answer when the process shuts down or `abandon` is called (the client went away).
   * `cancel` ends a watch the caller no longer needs (its read failed, or the booking was
   * decided already). Holds no Postgres connection: a queued booking's reads are Redis reads.
   */
  startWait(id: string): PollWait | null {
    const waiter = new Waiter(this.bookings, id);
    const slot = this.slots.acquire('wait', waiter.abandon);
    return slot ? waiter.begin(slot) : null;
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

/** A waiting answer's watch (LiveUpdates.startWait). */
export type PollWait = {
  until: (known: Standing, ms: number) => Promise<Standing>;
  /** The client went away or the process is shutting down: answer now (or at once, if not waiting yet). */
  abandon: () => void;
  cancel: () => void;
};

/**
 * One waiting answer. A class with its callbacks as fields rather than a nest of closures:
 * under a burst thousands wait at once, each for a fraction of a second, and what each
 * allocates is what the garbage collector then spends its time on (bench/RESULTS.md). It
 * watches for a decision only: a moving line does not make it read again.
 */
class Waiter implements PollWait {
  private latest: Standing | undefined;
  private last: Standing | undefined;
  private resolve: ((view: Standing) => void) | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** Abandoned before `until`: it answers at once. */
  private early = false;
  private ended = false;
  private slot: Slot | undefined;
  private unwatch: (() => void) | undefined;

  constructor(
    private readonly bookings: BookingWatch,
    private readonly id: string,
  ) {}

  /** Starts watching, once the wait has its stream slot. */
  begin(slot: Slot): this {
    this.slot = slot;
    this.unwatch = this.bookings.watch(this.id, this.onView, { read: false, positions: false });
    return this;
  }

  until(known: Standing, ms: number): Promise<Standing> {
    return new Promise((resolve) => {
      this.bookings.seed(this.id, known);
      // A read of the watch's own (after a change message) may be newer than the caller's;
      // a decision wins either way, being final for this wait.
      const last = decided(known) ? known : (this.latest ?? known);
      this.last = last;
      if (this.early || decided(last)) {
        this.cancel();
        resolve(last);
        return;
      }
      this.resolve = resolve;
      this.timer = setTimeout(this.abandon, ms);
    });
  }

  readonly abandon = (): void => {
    const resolve = this.resolve;
    if (!resolve) {
      this.early = true;
      return;
    }
    this.resolve = undefined;
    clearTimeout(this.timer);
    this.cancel();
    resolve(this.last!);
  };

  cancel(): void {
    if (this.ended) return;
    this.ended = true;
    this.unwatch?.();
    this.slot?.release();
  }

  private readonly onView: StandingListener = (view) => {
    this.latest = view;
    if (!this.resolve) return;
    this.last = view;
    if (decided(view)) this.abandon();
  };
}

/** Out of QUEUED, or unknown: nothing more to wait for. */
const decided = (view: Standing): boolean => view === 'unknown' || view.status !== 'QUEUED';
