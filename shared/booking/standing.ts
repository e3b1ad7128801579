import type { Database } from '../db/client.js';
import type { Booking } from '../db/schema/index.js';
import { BookingResultSchema, type BookingJob, type BookingResult } from '../queue/catalog.js';
import type { RequestIndex } from '../queue/request-index.js';
import { bookingReader } from './find-bookings.js';
import type { BookingStatus } from './statuses.js';
import { bookingView, type BookingView } from './view.js';
import { waitlistPosition } from './waitlist.js';

/**
 * Where booking X stands, the one answer status polls, full reads, settles and (later) live
 * updates share. Redis first: the request index knows a queued request's place in line and a
 * fresh decision, so a poll of a busy sale does not touch Postgres; Postgres answers for
 * everything decided and settled. The values are domain values ('unknown' for an id neither
 * knows); mapping them to HTTP is the caller's.
 */

/**
 * Where a queued request waits: in its show's undrawn waiting room (no place yet: the draw at
 * sales_open_at gives it one), or in line (its place). Absent once decided.
 */
export type QueuePhase = 'WAITING_ROOM' | 'IN_LINE';

/**
 * GOOD: the seats asked for ahead plus this request's fit in the seats AVAILABLE now in its scope
 * (its section, or the show for best available); UNLIKELY: they do not (holds may still lapse,
 * so it is not a refusal).
 */
export type Outlook = 'GOOD' | 'UNLIKELY';

/** What a poll shows: the queue position while queued, then the decision. */
export type StatusView = {
  id: string;
  status: BookingStatus;
  phase?: QueuePhase;
  /** While in the waiting room: when it is drawn. */
  sales_open_at?: string;
  /** In line: the place in the show's held line while held (paused, or behind a draw), else in the queue. */
  position?: number;
  /** In line: seats asked for by the requests of the same show ahead of it (held line exact, flowing queue approximate). */
  seats_ahead?: number;
  /** In line, once its show's seats are counted: whether the seats ahead and its own fit in what is AVAILABLE now. */
  outlook?: Outlook;
  /** In line and the show paused: nothing is decided until it resumes. */
  paused?: true;
  /** In line, not paused, once a decision rate is measured (its show's, else the queue's): about how long until it is decided. */
  estimated_wait_seconds?: number;
  hold_expires_at?: string;
  seats?: string[];
  reason?: string;
  updated_at: string;
  /** Its place on the waiting list while WAITLISTED, 1 = next. */
  waitlist_position?: number;
};

/** The whole booking; `phase` and `position` only while it is queued. */
export type FullView = BookingView & Pick<StatusView, QueuedField>;

type QueuedField = 'phase' | 'sales_open_at' | 'position' | 'seats_ahead' | 'outlook' | 'paused' | 'estimated_wait_seconds';

/** What an expected wait is estimated from: the place in line, and what is ahead of it in its show when known. */
export type WaitPlace = { position: number; show: { showId: string; requestsAhead: number } | null };

export type StandingOptions = {
  /** Seconds until the request at a place in line is decided, from a measured decision rate; null when unknown. */
  expectedWait?: (place: WaitPlace) => number | null;
};

/** A request in its show's held line (shared/queue/show-line.ts). */
type LinePlace = { room: boolean; salesOpenAt: number | null; paused: boolean };

/**
 * What is ahead of a request in its show, from Redis alone: the held line's exact count
 * (show-line.ts STATE_SCRIPT) or the flowing queue's counters (request-index.ts), and the seats
 * AVAILABLE in its scope as last counted (null before any count).
 */
type ShowAhead = { showId: string; requestsAhead: number; seatsAhead: number; seatCount: number; availableInScope: number | null };

export type QueuedState =
  /** `data` is present only when asked for (`withData`). */
  | { state: 'queued'; position: number; data: BookingJob | null; acceptedAt: number; line?: LinePlace; ahead?: ShowAhead }
  /** `result` is null when the recorded one does not parse: Postgres answers. */
  | { state: 'finished'; result: BookingResult | null }
  /** Exhausted its retries (an outage that outlasted them); an operator can retry it. */
  | { state: 'failed'; data: BookingJob; finishedAt: number }
  /**
   * Accepted into a job that is gone: removed (an operator, a script, removeOnFail) or never
   * added (the add failed). Unless Postgres has its decision, it was never decided.
   */
  | { state: 'removed' }
  | { state: 'absent' };

/**
 * A HELD recorded at decision time answers a poll while its hold has at least this long left:
 * it cannot have lapsed (the margin covers clock skew between this host and Postgres), and a
 * confirm or cancel marks the record settled before it starts. Closer to expiry, Postgres answers.
 */
const RECORDED_HOLD_MARGIN_MS = 5_000;

export class BookingStanding {
  private readonly read: (id: string) => Promise<Booking | null>;

  constructor(
    private readonly index: RequestIndex,
    private readonly db: Database,
    private readonly options: StandingOptions = {},
  ) {
    this.read = bookingReader(db);
  }

  /** The booking's view, with its place on the waiting list while it waits there (a moving figure: always read now). */
  private async viewOf(booking: Booking): Promise<BookingView> {
    const view = bookingView(booking);
    if (booking.status !== 'WAITLISTED') return view;
    return { ...view, waitlist_position: await waitlistPosition(this.db, booking) };
  }

  /** The poll view. Redis answers alone for a queued request, a final failure and a fresh hold. */
  async status(id: string): Promise<StatusView | 'unknown'> {
    const queued = await this.inQueue(id);
    if (queued.state === 'queued') return { id, status: 'QUEUED', ...this.queuedPlace(queued), updated_at: new Date(queued.acceptedAt).toISOString() };
    // A final failure (sold out, limits) never changes: the recorded result is enough.
    if (queued.state === 'finished' && queued.result?.status === 'FAILED') {
      return { id, status: 'FAILED', reason: queued.result.reason, seats: [], updated_at: queued.result.decided_at };
    }
    if (queued.state === 'finished' && queued.result?.status === 'HELD' && queued.result.hold_expires_at) {
      const { seats, decided_at, hold_expires_at } = queued.result;
      if (Date.parse(hold_expires_at) - Date.now() > RECORDED_HOLD_MARGIN_MS) {
        return { id, status: 'HELD', seats, updated_at: decided_at, hold_expires_at };
      }
    }
    const booking = await this.read(id);
    if (booking) return statusOf(await this.viewOf(booking));
    if (queued.state === 'failed') return statusOf(processingFailure(queued.data, queued.finishedAt));
    if (queued.state === 'removed') return removedStatus(id);
    return 'unknown';
  }

  /**
   * The full view (customer_email unmasked: masking is the reader's choice; but a removed
   * request's comes from the index's copy, masked already). Postgres first.
   */
  async booking(id: string): Promise<FullView | 'unknown'> {
    const booking = await this.read(id);
    if (booking) return this.viewOf(booking);
    const queued = await this.inQueue(id, { withData: true });
    if (queued.state === 'queued' && queued.data) return { ...undecided(queued.data, queued.acceptedAt), ...this.queuedPlace(queued) };
    if (queued.state === 'failed') return processingFailure(queued.data, queued.finishedAt);
    if (queued.state === 'removed') {
      // Agrees with the poll; the request comes from the copy the index keeps while undecided.
      const request = await this.index.requestOf(id);
      if (request) return removedRequest(request);
    }
    return 'unknown';
  }

  /**
   * Where a request stands in Redis alone; `absent` and `removed` mean ask Postgres (decided
   * and cleaned up, or unknown, or removed undecided). `withData` also returns the request
   * itself (for the full view).
   */
  async inQueue(id: string, options: { withData?: boolean } = {}): Promise<QueuedState> {
    const entry = await this.index.lookup(id, options.withData);
    if (entry.state === 'unknown') return { state: 'absent' };
    if (entry.state === 'job-gone') return { state: 'removed' };
    if (entry.state === 'decided') return { state: 'finished', result: recordedResult(entry.result) };
    if (entry.state === 'in-line') {
      const { phase, position, salesOpenAt, paused, request, seatsAhead, requestsAhead, availableInScope } = entry.standing;
      return {
        state: 'queued',
        position,
        data: request,
        acceptedAt: Date.parse(request.accepted_at),
        line: { room: phase === 'room', salesOpenAt, paused },
        ...(phase === 'held' ? { ahead: { showId: request.show_id, requestsAhead, seatsAhead, seatCount: request.seat_count, availableInScope } } : {}),
      };
    }
    const data = entry.batch?.find((request) => request.id === id) ?? null;
    if (entry.finishedAt !== null) {
      // Failed for good (retries exhausted) without deciding this request; a completed batch
      // whose result is missing here was decided: Postgres has it.
      if (entry.failedReason !== null && data) return { state: 'failed', data, finishedAt: entry.finishedAt };
      return { state: 'absent' };
    }
    return { state: 'queued', position: entry.position ?? 0, data, acceptedAt: entry.acceptedAt, ...(entry.flow ? { ahead: entry.flow } : {}) };
  }

  /**
   * A queued request's phase and place: no place in the undrawn room (its sale's opening
   * instead); in line, its place, and while the line moves, the expected wait.
   */
  private queuedPlace(queued: Extract<QueuedState, { state: 'queued' }>): Pick<StatusView, QueuedField> {
    if (queued.line?.room) {
      return { phase: 'WAITING_ROOM', ...(queued.line.salesOpenAt !== null ? { sales_open_at: new Date(queued.line.salesOpenAt).toISOString() } : {}) };
    }
    const ahead = queued.ahead;
    const chances = ahead ? chancesOf(ahead) : {};
    if (queued.line?.paused) return { phase: 'IN_LINE', position: queued.position, ...chances, paused: true };
    const show = ahead ? { showId: ahead.showId, requestsAhead: ahead.requestsAhead } : null;
    const wait = this.options.expectedWait?.({ position: queued.position, show }) ?? null;
    return { phase: 'IN_LINE', position: queued.position, ...chances, ...(wait !== null ? { estimated_wait_seconds: wait } : {}) };
  }

  /** Whether Postgres has a decision for the request. */
  async isDecided(id: string): Promise<boolean> {
    return (await this.read(id)) !== null;
  }

  /**
   * Before a confirm or cancel: a HELD recorded for polls would go stale, so from now on polls
   * of this booking read Postgres.
   */
  async beforeSettle(id: string): Promise<void> {
    await this.index.markSettled(id);
  }
}

/** seats_ahead, and the outlook once the show's available seats have been counted. */
function chancesOf(ahead: ShowAhead): Pick<StatusView, 'seats_ahead' | 'outlook'> {
  if (ahead.availableInScope === null) return { seats_ahead: ahead.seatsAhead };
  return { seats_ahead: ahead.seatsAhead, outlook: ahead.seatsAhead + ahead.seatCount <= ahead.availableInScope ? 'GOOD' : 'UNLIKELY' };
}

function statusOf(view: BookingView): StatusView {
  return {
    id: view.id,
    status: view.status,
    seats: view.seats,
    updated_at: view.updated_at,
    ...(view.hold_expires_at ? { hold_expires_at: view.hold_expires_at } : {}),
    ...(view.reason ? { reason: view.reason } : {}),
    ...(view.waitlist_position !== undefined ? { waitlist_position: view.waitlist_position } : {}),
  };
}

/** A request as accepted, before any decision: what the queue knows of it. */
function undecided(job: BookingJob, acceptedAt: number): BookingView {
  return {
    id: job.id,
    show_id: job.show_id,
    customer_email: job.customer_email,
    status: 'QUEUED',
    reason: null,
    seat_count: job.seat_count,
    section: job.section,
    requested_seats: job.seats,
    seats: [],
    total_cents: null,
    hold_expires_at: null,
    accepted_at: job.accepted_at,
    decided_at: null,
    confirmed_at: null,
    updated_at: new Date(acceptedAt).toISOString(),
    from_waitlist: false,
  };
}

/** A booking that exhausted its retries without a decision: it was never given seats. */
function processingFailure(job: BookingJob, finishedAt: number): BookingView {
  const finished = new Date(finishedAt).toISOString();
  return {
    ...undecided(job, finishedAt),
    status: 'FAILED',
    reason: 'PROCESSING_ERROR',
    total_cents: 0,
    decided_at: finished,
    updated_at: finished,
  };
}

/**
 * Accepted, then its job was removed from the queue before deciding it (an operator, a script,
 * removeOnFail's expiry): it will never be decided, and the client must not read "unknown id".
 */
function removedStatus(id: string): StatusView {
  return { id, status: 'FAILED', reason: 'REQUEST_REMOVED', seats: [], updated_at: new Date().toISOString() };
}

/** The full view of a removed request, from the copy of it the index kept. */
function removedRequest(job: BookingJob): BookingView {
  return { ...undecided(job, Date.now()), status: 'FAILED', reason: 'REQUEST_REMOVED', total_cents: 0 };
}

function recordedResult(json: string): BookingResult | null {
  try {
    const parsed = BookingResultSchema.safeParse(JSON.parse(json));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}
