import type { SalesState } from '../../../shared/booking/sale-schedule.js';
import type { ShowDetail } from '../../../shared/booking/shows.js';
import type { ChangeSubscriber } from '../../../shared/live/changes.js';

/**
 * Watching shows' availability for this process's show streams. A change message for a show
 * (seats that changed status) marks it; at most once per COALESCE_MS per show, the show's
 * availability and the changed seats' statuses are read once (two queries) and handed to every
 * stream of that show: the cost follows the rate of changes, never the number of clients.
 */

export type Availability = {
  show_id: string;
  available_seats: number;
  sections: Array<{ name: string; available_seats: number; held_seats: number; booked_seats: number }>;
  sales_state: SalesState;
  /** Requests waiting to be decided; null while the queue cannot be read (as in show views). */
  in_line: number | null;
};

export type SeatChange = { label: string; status: string };

/**
 * `seats` are the changed seats' statuses now; `reload` says changes may have been missed (the
 * subscriber reconnected), so a seat map should be read again whole.
 */
export type ShowUpdate = { availability: Availability; seats: SeatChange[]; reload: boolean };
export type ShowListener = (update: ShowUpdate | 'gone') => void;

/** At most this many availability reads per show per second: 1000 / COALESCE_MS. */
const COALESCE_MS = 250;

/** The availability event of a show view. */
export function availabilityOf(show: ShowDetail & { in_line: number | null }): Availability {
  return {
    show_id: show.id,
    available_seats: show.available_seats,
    sections: show.sections.map(({ name, available_seats, held_seats, booked_seats }) => ({ name, available_seats, held_seats, booked_seats })),
    sales_state: show.sales_state,
    in_line: show.in_line,
  };
}

type Entry = {
  showId: string;
  listeners: Set<ShowListener>;
  labels: Set<string>;
  reload: boolean;
  timer: NodeJS.Timeout | undefined;
  lastFlush: number;
  unsubscribe: () => void;
};

export class ShowWatch {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly deps: {
      subscriber: ChangeSubscriber;
      /** The show's availability now; null once the show is gone. */
      readAvailability: (showId: string) => Promise<Availability | null>;
      readSeats: (showId: string, labels: readonly string[]) => Promise<SeatChange[]>;
      onError?: (error: unknown) => void;
    },
  ) {
    deps.subscriber.onResync(() => {
      for (const entry of this.entries.values()) {
        entry.reload = true;
        this.schedule(entry);
      }
    });
  }

  watch(showId: string, listener: ShowListener): () => void {
    let entry = this.entries.get(showId);
    if (!entry) {
      const created: Entry = { showId, listeners: new Set(), labels: new Set(), reload: false, timer: undefined, lastFlush: 0, unsubscribe: () => {} };
      created.unsubscribe = this.deps.subscriber.onShow(showId, (change) => {
        for (const label of change.seats) created.labels.add(label);
        this.schedule(created);
      });
      this.entries.set(showId, created);
      entry = created;
    }
    entry.listeners.add(listener);
    const watched = entry;
    return () => {
      watched.listeners.delete(listener);
      if (watched.listeners.size > 0 || this.entries.get(showId) !== watched) return;
      watched.unsubscribe();
      clearTimeout(watched.timer);
      this.entries.delete(showId);
    };
  }

  /** The show's availability now (a stream's first event); null for an unknown show. */
  current(showId: string): Promise<Availability | null> {
    return this.deps.readAvailability(showId);
  }

  close(): void {
    for (const entry of this.entries.values()) {
      entry.unsubscribe();
      clearTimeout(entry.timer);
    }
    this.entries.clear();
  }

  private schedule(entry: Entry): void {
    if (entry.timer) return;
    const wait = Math.max(0, entry.lastFlush + COALESCE_MS - Date.now());
    entry.timer = setTimeout(() => void this.flush(entry), wait);
  }

  private async flush(entry: Entry): Promise<void> {
    const labels = [...entry.labels];
    const reload = entry.reload;
    entry.labels.clear();
    entry.reload = false;
    entry.lastFlush = Date.now();
    try {
      const [availability, seats] = await Promise.all([this.deps.readAvailability(entry.showId), this.deps.readSeats(entry.showId, labels)]);
      if (this.entries.get(entry.showId) !== entry) return;
      for (const listener of [...entry.listeners]) listener(availability ? { availability, seats, reload } : 'gone');
    } catch (error) {
      // Postgres unavailable: keep the changes for the next try.
      for (const label of labels) entry.labels.add(label);
      entry.reload ||= reload;
      this.deps.onError?.(error);
      entry.timer = undefined;
      if (this.entries.get(entry.showId) === entry) entry.timer = setTimeout(() => void this.flush(entry), 1_000);
      return;
    }
    entry.timer = undefined;
    // Changes that arrived during the reads go out on the next flush.
    if (entry.labels.size > 0 || entry.reload) this.schedule(entry);
  }
}
