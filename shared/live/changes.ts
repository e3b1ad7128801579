import { z } from 'zod';
import { createSubscriberConnection, type RedisClient, type RedisTarget } from '../redis.js';
import { BOOKING_STATUSES, type BookingStatus } from '../booking/statuses.js';

/**
 * The one fan-out of changes: after a change commits, its writer publishes a small message
 * ("booking X is now S", "these seats of show Y changed") on one Redis pub/sub channel, and
 * every API process, through one subscriber connection, tells the streams it serves to look
 * again. A message is a hint, never the state itself: a stream re-reads where its booking
 * stands (shared/booking/standing.ts) or its show's availability, so a lost or late message
 * only delays an update (readers also look again on a slow timer and after the subscriber
 * reconnects; docs/ARCHITECTURE.md "Live updates").
 *
 * Pub/sub rather than a Redis stream: nothing needs to be kept (the state lives in Postgres and
 * the request index), so there is nothing to trim, no consumer offsets, and a publish costs
 * Redis one fan-out to the few subscribed API processes.
 */

/** The channel every API process subscribes to, under the deployment's prefix. */
export const liveChannel = (queuePrefix: string): string => `${queuePrefix}:live:changes`;

export type BookingChange = { id: string; status: BookingStatus };
/** Seats of one show whose status changed (labels as the seat map prints them). */
export type ShowChange = { show_id: string; seats: string[] };
export type Changes = { bookings?: BookingChange[]; shows?: ShowChange[] };

const ChangesMessage = z.object({
  bookings: z.array(z.object({ id: z.string(), status: z.enum(BOOKING_STATUSES) })).default([]),
  shows: z.array(z.object({ show_id: z.string(), seats: z.array(z.string()) })).default([]),
});

/** A message of changes ready to PUBLISH on `channel` (ChangePublisher.prepareBookings). */
export type ChangeMessage = { channel: string; message: string; showIds: string[] };

/** What a writer knows about each booking it changed: enough to say which show and seats moved. */
export type ChangedBooking = { id: string; status: BookingStatus; showId: string; seats: readonly string[] };

/** The message for a set of changed bookings: each booking, and their seats grouped by show. */
export function changesOf(bookings: readonly ChangedBooking[]): Changes {
  const seatsByShow = new Map<string, string[]>();
  for (const booking of bookings) {
    if (booking.seats.length === 0) continue;
    const seats = seatsByShow.get(booking.showId) ?? [];
    seats.push(...booking.seats);
    seatsByShow.set(booking.showId, seats);
  }
  return {
    bookings: bookings.map(({ id, status }) => ({ id, status })),
    shows: [...seatsByShow].map(([show_id, seats]) => ({ show_id, seats })),
  };
}

/**
 * Publishes changes, fire and forget: `publish` never throws, never needs awaiting and costs a
 * writer one PUBLISH per batch (the API's connection pipelines it with the other commands of
 * its event-loop turn). A failed publish is reported to `onError` and dropped: the change is
 * committed already, and readers find it on their next look.
 */
export class ChangePublisher {
  private readonly channel: string;

  /**
   * `onSeatsChanged` hears the shows whose seats changed, from the same call: the writer's
   * process recounts their available seats (shared/booking/available-seats.ts).
   */
  constructor(
    private readonly redis: RedisClient,
    queuePrefix: string,
    private readonly onError: (error: unknown) => void = () => {},
    private readonly onSeatsChanged: (showIds: string[]) => void = () => {},
  ) {
    this.channel = liveChannel(queuePrefix);
  }

  publish(changes: Changes): void {
    const message = this.prepare(changes);
    if (message) this.send(message);
  }

  /** Shorthand for a writer that changed bookings (a decision batch, a settle, an expiry batch). */
  publishBookings(bookings: readonly ChangedBooking[]): void {
    if (bookings.length > 0) this.publish(changesOf(bookings));
  }

  /**
   * The message of these bookings' changes, for a writer that sends it itself in a command of
   * its own (the worker's record of decisions publishes it from its script: one round trip for
   * both) and then calls `published`, or hands it to `send`. Null: nothing changed.
   */
  prepareBookings(bookings: readonly ChangedBooking[]): ChangeMessage | null {
    return bookings.length > 0 ? this.prepare(changesOf(bookings)) : null;
  }

  /** Sends a prepared message, fire and forget as `publish`. */
  send(message: ChangeMessage): void {
    this.published(message);
    try {
      this.redis.publish(message.channel, message.message).catch(this.onError);
    } catch (error) {
      this.onError(error);
    }
  }

  /**
   * A prepared message went out: the shows whose seats changed are recounted now, not before,
   * so a queued request's outlook never shows the new count ahead of its own decision.
   */
  published(message: ChangeMessage): void {
    if (message.showIds.length > 0) this.onSeatsChanged(message.showIds);
  }

  private prepare(changes: Changes): ChangeMessage | null {
    if (!changes.bookings?.length && !changes.shows?.length) return null;
    return { channel: this.channel, message: JSON.stringify(changes), showIds: changes.shows?.map((show) => show.show_id) ?? [] };
  }
}

type Listener<T> = (change: T) => void;

/**
 * One subscriber connection per process, dispatching each message to the listeners of the
 * booking ids and show ids it names (a map lookup per change, whatever the number of streams).
 * `onResync` listeners run whenever the connection is (again) subscribed: messages published
 * while it was down are lost, so everything watched should be looked at again.
 */
export class ChangeSubscriber {
  private readonly bookingListeners = new Map<string, Set<Listener<BookingChange>>>();
  private readonly showListeners = new Map<string, Set<Listener<ShowChange>>>();
  private readonly resyncListeners = new Set<() => void>();
  private closed = false;

  private constructor(
    private readonly connection: RedisClient,
    private readonly channel: string,
    private readonly onError: (error: unknown) => void,
  ) {
    connection.on('message', (from: string, message: string) => {
      if (from === this.channel) this.dispatch(message);
    });
    // ioredis subscribes again by itself after a reconnect (autoResubscribe), then is ready.
    connection.on('ready', () => {
      for (const listener of this.resyncListeners) listener();
    });
    connection.on('error', () => {}); // outages are the producer connection's to log
  }

  /**
   * Opens the process's subscriber connection. It does not wait for Redis: the subscription
   * goes out once Redis answers (so an API can start while Redis is down, as it does today).
   */
  static open(target: RedisTarget, queuePrefix: string, onError: (error: unknown) => void = () => {}): ChangeSubscriber {
    const connection = createSubscriberConnection(target);
    const channel = liveChannel(queuePrefix);
    const subscriber = new ChangeSubscriber(connection, channel, onError);
    connection.subscribe(channel).catch((error: unknown) => {
      if (!subscriber.closed) onError(error);
    });
    return subscriber;
  }

  onBooking(id: string, listener: Listener<BookingChange>): () => void {
    return addTo(this.bookingListeners, id, listener);
  }

  onShow(showId: string, listener: Listener<ShowChange>): () => void {
    return addTo(this.showListeners, showId, listener);
  }

  onResync(listener: () => void): () => void {
    this.resyncListeners.add(listener);
    return () => this.resyncListeners.delete(listener);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // QUIT on a connection still waiting for Redis would wait with it.
    if (this.connection.status !== 'ready') {
      this.connection.disconnect();
      return;
    }
    await this.connection.quit().catch(() => this.connection.disconnect());
  }

  private dispatch(message: string): void {
    let changes: z.infer<typeof ChangesMessage>;
    try {
      const parsed = ChangesMessage.safeParse(JSON.parse(message));
      if (!parsed.success) throw new Error(`unreadable change message: ${parsed.error.message}`);
      changes = parsed.data;
    } catch (error) {
      this.onError(error);
      return;
    }
    for (const change of changes.bookings) for (const listener of this.bookingListeners.get(change.id) ?? []) listener(change);
    for (const change of changes.shows) for (const listener of this.showListeners.get(change.show_id) ?? []) listener(change);
  }
}

function addTo<T>(listeners: Map<string, Set<Listener<T>>>, key: string, listener: Listener<T>): () => void {
  let set = listeners.get(key);
  if (!set) listeners.set(key, (set = new Set()));
  set.add(listener);
  return () => {
    set.delete(listener);
    if (set.size === 0 && listeners.get(key) === set) listeners.delete(key);
  };
}
