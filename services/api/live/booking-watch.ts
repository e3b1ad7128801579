import type { StatusView } from '../../../shared/booking/standing.js';
import type { ChangeSubscriber } from '../../../shared/live/changes.js';

/**
 * Watching where bookings stand, for this process's booking streams and waiting polls. One
 * entry per watched booking id, however many clients watch it; the entry asks "where does it
 * stand" (shared/booking/standing.ts, the same answer as GET /booking/:id/status) again when:
 * - a change message names it (a decision, a settle, an expiry: shared/live/changes.ts);
 * - the subscriber reconnected (messages may have been lost meanwhile);
 * - on the once-a-second tick, while QUEUED, when the line has moved (the request index's
 *   `taken` counter, read once per tick for the whole process) or every few seconds anyway;
 *   while HELD, once its hold has lapsed (a claim may release it without a message); and every
 *   SAFETY_REREAD_MS whatever the state (a message lost on the way).
 * A queued booking's reads cost Redis only: nothing here holds a Postgres connection between reads.
 */

export type Standing = StatusView | 'unknown';
export type StandingListener = (view: Standing) => void;

const TICK_MS = 1_000;
/** A queued booking is read again at least this often, even when the line did not move. */
const QUEUED_REREAD_MS = 5_000;
/** A lapsed hold is read again this often until it leaves HELD. */
const LAPSED_REREAD_MS = 2_000;
/** Any watched booking is read again this often: a lost message heals within it. */
const SAFETY_REREAD_MS = 30_000;

type Entry = {
  id: string;
  listeners: Set<StandingListener>;
  view: Standing | undefined;
  readAt: number;
  reading: boolean;
  again: boolean;
  /** Listeners that follow the place in line (streams), not only the decision (waiting answers). */
  positionWatchers: number;
  unsubscribe: () => void;
};

export class BookingWatch {
  private readonly entries = new Map<string, Entry>();
  private timer: NodeJS.Timeout | undefined;
  private lastTaken: number | undefined;

  constructor(
    private readonly deps: {
      standing: { status: (id: string) => Promise<Standing> };
      subscriber: ChangeSubscriber;
      /** The request index's `taken` counter: when it moves, queued positions moved. */
      lineTaken: () => Promise<number>;
      onError?: (error: unknown) => void;
    },
  ) {
    deps.subscriber.onResync(() => {
      for (const entry of this.entries.values()) this.read(entry);
    });
  }

  /**
   * Calls `listener` with every new answer for `id` (an answer equal to the last is not
   * repeated). A new entry reads once right after subscribing: a change made between the
   * caller's own read and the subscription sent its message to nobody, and this read finds it.
   * `positions: false` is for a listener that waits for the decision alone: a queued booking
   * is then read again when the line moves only while some other listener follows its place.
   * Returns the unwatch function.
   */
  watch(id: string, listener: StandingListener, options: { read?: boolean; positions?: boolean } = {}): () => void {
    let entry = this.entries.get(id);
    if (!entry) {
      const created: Entry = { id, listeners: new Set(), view: undefined, readAt: Date.now(), reading: false, again: false, positionWatchers: 0, unsubscribe: () => {} };
      created.unsubscribe = this.deps.subscriber.onBooking(id, () => this.read(created));
      this.entries.set(id, created);
      entry = created;
      // `read: false`: the caller reads itself, after this subscription, and hands its answer to seed().
      if (options.read !== false) this.read(entry);
    } else if (entry.view !== undefined) {
      // An entry watched already: its last answer may be newer than the caller's own read.
      const { view } = entry;
      queueMicrotask(() => {
        if (entry?.listeners.has(listener)) listener(view);
      });
    }
    entry.listeners.add(listener);
    const followsPlace = options.positions !== false;
    if (followsPlace) entry.positionWatchers++;
    this.timer ??= setInterval(() => void this.tick(), TICK_MS).unref();
    const watched = entry;
    return () => {
      if (!watched.listeners.delete(listener)) return;
      if (followsPlace) watched.positionWatchers--;
      if (watched.listeners.size > 0 || this.entries.get(id) !== watched) return;
      watched.unsubscribe();
      this.entries.delete(id);
      if (this.entries.size === 0) this.stopTicking();
    };
  }

  /**
   * The caller's own answer for a watched id, read after its watch began: it becomes the
   * entry's answer unless a read of the entry's own has already given one.
   */
  seed(id: string, view: Standing): void {
    const entry = this.entries.get(id);
    if (!entry || entry.view !== undefined || entry.reading) return;
    entry.view = view;
    entry.readAt = Date.now();
  }

  /** Bookings watched in this process (for tests and metrics). */
  get size(): number {
    return this.entries.size;
  }

  close(): void {
    for (const entry of this.entries.values()) entry.unsubscribe();
    this.entries.clear();
    this.stopTicking();
  }

  private stopTicking(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private async tick(): Promise<void> {
    const now = Date.now();
    const entries = [...this.entries.values()];
    let lineMoved = false;
    if (entries.some((entry) => entry.positionWatchers > 0 && isQueued(entry.view))) {
      const taken = await this.deps.lineTaken().catch(() => undefined);
      lineMoved = taken !== undefined && taken !== this.lastTaken;
      if (taken !== undefined) this.lastTaken = taken;
    }
    for (const entry of entries) {
      const age = now - entry.readAt;
      const view = entry.view;
      const due =
        age >= SAFETY_REREAD_MS ||
        view === undefined ||
        (isQueued(view) && ((lineMoved && entry.positionWatchers > 0) || age >= QUEUED_REREAD_MS)) ||
        (view !== 'unknown' && view.status === 'HELD' && lapsed(view, now) && age >= LAPSED_REREAD_MS);
      if (due) this.read(entry);
    }
  }

  /** One read at a time per entry; a trigger during a read asks for one more afterwards. */
  private read(entry: Entry): void {
    if (entry.reading) {
      entry.again = true;
      return;
    }
    entry.reading = true;
    entry.again = false;
    this.deps.standing
      .status(entry.id)
      .then(
        (view) => {
          entry.readAt = Date.now();
          const changed = entry.view === undefined || JSON.stringify(view) !== JSON.stringify(entry.view);
          entry.view = view;
          if (changed) for (const listener of [...entry.listeners]) listener(view);
        },
        // Redis or Postgres unavailable: keep the last answer; the tick reads again.
        (error: unknown) => this.deps.onError?.(error),
      )
      .finally(() => {
        entry.reading = false;
        if (entry.again && this.entries.get(entry.id) === entry) this.read(entry);
      });
  }
}

const isQueued = (view: Standing | undefined): boolean => view !== undefined && view !== 'unknown' && view.status === 'QUEUED';
const lapsed = (view: StatusView, now: number): boolean => view.hold_expires_at !== undefined && Date.parse(view.hold_expires_at) <= now;
