import { sql, type SQL } from 'drizzle-orm';
import { STATEMENT_NOW } from '../../db/clock.js';
import type { BookingEventType } from '../../webhooks/events.js';
import { eventsListened } from '../../webhooks/outbox.js';
import { lapsedHoldsExist } from './holds.js';
import { waitlistExists } from './waitlist.js';

/**
 * The statements of one batch decision, in the order decide.ts runs them: the first look on its
 * own (which requests are decided already; a sold-out show's whole batch written), then, in one
 * transaction, the customers' locks, their live seats with the show's waiting list, and the
 * bookings written with their seats marked HELD and their outbox events.
 *
 * A claim transaction's statements run one after another, each a round trip that waits for the
 * worker's event loop and a core; under a burst that waiting was most of a transaction's length
 * (bench/RESULTS.md, session 8). So what can share a statement does.
 */

/** A decided booking as every statement here returns it (decide.ts's ExistingRow). */
const DECIDED_COLUMNS = ['id', 'status', 'failure_reason', 'seat_labels', 'hold_expires_at', 'decided_at'] as const;
const decidedColumns = (table?: string): SQL => sql.raw(DECIDED_COLUMNS.map((column) => (table ? `${table}.${column}` : column)).join(', '));

/** The outbox event of a failed decision. */
const EVENT_OF_FAILURE: BookingEventType = 'booking.failed';

/** A request of a batch, as the batch's first statement reads it (`firstLook`): a decision row's request half. */
export type LookedUpRequest = Pick<
  DecisionRow,
  'id' | 'customer_email' | 'seat_count' | 'requested_section' | 'requested_seats' | 'idempotency_key' | 'accepted_at'
>;

/**
 * What the first statement of a batch may write: nothing (`never`: requests that may join the
 * waiting list take the full path); the whole batch when the show is sold out and no webhook
 * listens to `booking.failed` (`unlistened`: then there is no outbox event to write, so the
 * statement is a decision on its own, outside any transaction); the whole batch when sold out
 * (`always`: inside the claim transaction, which records the events after it).
 */
export type FirstLookWrites = 'never' | 'unlistened' | 'always';

/**
 * A batch's first statement. It reads the requests that already have a booking row
 * (at-least-once delivery), whether the show is sold out (`soldOut`, below) and whether a webhook
 * listens to `booking.failed`. When the show is sold out and `writes` allows it, the same
 * statement decides every other request FAILED and writes it: no seat is given, so no lock is
 * needed, and the customers' live seats (read in the same snapshot) only choose the reason, with
 * the locking path's precedence (the cap first). Under a burst most requests after the sell-out
 * end here, in one round trip instead of six (bench/RESULTS.md, session 8).
 *
 * Rows: one per booking found (`fresh` false), or a single row with a null id when none is,
 * then one per booking written (`fresh` true); `sold_out` and `listened` on every row. A request
 * missing from both was decided by another worker after this statement's snapshot.
 */
export const firstLook = (showId: string, requests: LookedUpRequest[], maxSeatsPerCustomer: number, writes: FirstLookWrites): SQL => {
  const ids = requests.map((request) => request.id);
  const found = sql`LEFT JOIN bookings b ON b.id = ANY(${sql.param(ids)}::uuid[])`;
  // Nothing to write: the earlier decisions alone, in the same rows, and no INSERT to plan.
  if (writes === 'never') {
    return sql`
  SELECT false AS sold_out, false AS listened, false AS fresh, ${decidedColumns('b')}
  FROM (SELECT 1) AS f ${found}`;
  }
  const flag = sql`SELECT s.sold_out, ${eventsListened([EVENT_OF_FAILURE])} AS listened FROM (${soldOut(showId)}) AS s`;
  const writing = writes === 'always' ? sql`f.sold_out` : sql`f.sold_out AND NOT f.listened`;
  const emails = [...new Set(requests.map((request) => request.customer_email))];
  return sql`
  WITH flag AS MATERIALIZED (${flag}),
  written AS (${insertBookings(
    showId,
    sql`(SELECT q.id, q.customer_email, q.seat_count, q.requested_section, q.requested_seats,
               'FAILED' AS status,
               CASE WHEN coalesce(live.seats, 0) + q.seat_count > ${maxSeatsPerCustomer} THEN 'LIMIT_EXCEEDED'
                    WHEN q.requested_seats IS NOT NULL THEN 'SEATS_UNAVAILABLE'
                    ELSE 'SOLD_OUT' END AS failure_reason,
               q.idempotency_key, q.accepted_at, '{}'::int[] AS seat_ids, '{}'::text[] AS seat_labels
        FROM jsonb_to_recordset(${JSON.stringify(requests)}::jsonb) AS q(
          id uuid, customer_email text, seat_count int, requested_section text, requested_seats text[],
          idempotency_key text, accepted_at timestamptz)
        LEFT JOIN (${liveSeatsByCustomer(showId, emails)}) AS live ON live.customer_email = q.customer_email
        -- A one-time filter: when the batch is not decided here, the live seats are not read.
        WHERE (SELECT ${writing} FROM flag AS f)) AS r`,
    0,
  )})
  SELECT f.sold_out, f.listened, false AS fresh, ${decidedColumns('b')}
  FROM flag AS f
  ${found}
  UNION ALL
  SELECT f.sold_out, f.listened, true, ${decidedColumns('w')}
  FROM written AS w CROSS JOIN flag AS f`;
};

/** The requests of a batch that already have a booking row (a re-read after a concurrent decision). */
export const decidedAlready = (ids: string[]): SQL => sql`
  SELECT ${decidedColumns('b')}
  FROM bookings b WHERE b.id = ANY(${sql.param(ids)}::uuid[])`;

/**
 * No seat AVAILABLE and no lapsed hold to release, read from the committed state without locks.
 * Seats other transactions are claiming right now are still AVAILABLE in the committed state,
 * so this never answers "sold out" early.
 */
export const soldOut = (showId: string): SQL => sql`
  SELECT NOT EXISTS (SELECT 1 FROM seats WHERE show_id = ${showId} AND status = 'AVAILABLE')
     AND NOT ${lapsedHoldsExist(showId)} AS sold_out`;

/**
 * Per-customer cap: advisory locks on (show, customer), taken in key order so two batches can
 * never deadlock, serialise concurrent claims by one customer for one show across all workers.
 * Released at commit.
 */
export const lockCustomers = (showId: string, emails: string[]): SQL => sql`
  SELECT pg_advisory_xact_lock(key) FROM (
    SELECT DISTINCT hashtextextended(${showId} || '|' || email, 0) AS key
    FROM unnest(${sql.param(emails)}::text[]) AS email ORDER BY key
  ) AS keys`;

/**
 * Seats each of these customers holds or has booked for the show (lapsed holds excluded), and
 * the seats their places on the waiting list wait for: an offer turns those into a hold without
 * asking the cap again, so they count from the moment the customer joins. Only customers with
 * some are returned.
 *
 * One lookup of bookings_customer_live_idx (show, customer) per customer, as a correlated
 * subquery, which the planner cannot turn into a join. Written as one scan with
 * `customer_email = ANY(...)`, its plan depended on the statistics. On a bookings table never
 * analyzed (a new database's first sale, every bench run), it read all of the show's holds
 * through the hold-expiry index: 1.3 ms a call against 0.38 this way. Analyzed, with 200
 * customers, it took 1.8 ms against 0.8 (bench/RESULTS.md, session 6).
 */
export const liveSeatsByCustomer = (showId: string, emails: string[]): SQL => sql`
  SELECT customer_email, seats FROM (
    SELECT e.email AS customer_email,
           (SELECT sum(CASE WHEN b.status = 'WAITLISTED' THEN b.seat_count ELSE cardinality(b.seat_ids) END)::int
            FROM bookings b
            WHERE b.show_id = ${showId} AND b.customer_email = e.email
              AND b.status IN ('HELD', 'CONFIRMED', 'WAITLISTED')
              AND (b.status <> 'HELD' OR b.hold_expires_at > ${STATEMENT_NOW})) AS seats
    FROM unnest(${sql.param(emails)}::text[]) AS e(email)
  ) AS live
  WHERE seats IS NOT NULL`;

/**
 * What a claim reads once it holds its customers' locks, in one statement and one row: each
 * customer's live seats (`live`, an object of the customers with some, from
 * `liveSeatsByCustomer`), whether the show has a waiting list (`waiting`), and which of
 * `decidedIds` already have a booking (`decided`, as `decidedAlready` returns them) when the
 * batch had no first look to find them. All must be read after the locks: a statement's snapshot
 * is taken when it starts, so they cannot share the locking statement.
 */
export const claimStanding = (showId: string, emails: string[], decidedIds: string[]): SQL => sql`
  SELECT (${waitlistExists(showId)}) AS waiting,
         (SELECT coalesce(json_object_agg(live.customer_email, live.seats), '{}')
          FROM (${liveSeatsByCustomer(showId, emails)}) AS live) AS live,
         (SELECT coalesce(json_agg(d), '[]') FROM (${decidedAlready(decidedIds)}) AS d) AS decided`;

/** A decided request as `writeDecisions` takes it. */
export type DecisionRow = {
  id: string;
  customer_email: string;
  seat_count: number;
  requested_section: string | null;
  requested_seats: string[] | null;
  status: 'HELD' | 'FAILED' | 'WAITLISTED';
  failure_reason: string | null;
  idempotency_key: string | null;
  accepted_at: string;
  seat_ids: number[];
  seat_labels: string[];
};

/**
 * Writes a claim's decisions in one statement: the bookings, then their seats marked HELD and
 * pointing at them, then their outbox events (`record_booking_events`, in the order given).
 * A hold runs its full length from when it is given: this is the last statement before the
 * commit, so the clock is read here, not at BEGIN (db/clock.ts).
 *
 * ON CONFLICT DO NOTHING plus RETURNING lets the caller see a request that another worker
 * decided meanwhile (a duplicate delivery running in parallel): fewer rows than it sent, and it
 * rolls back. `seats_held` (on every row) counts the seats marked: only AVAILABLE ones are
 * touched, so a count short of the seats given means the locks did not hold what the claim saw.
 *
 * The order inside one statement: the seats' foreign key is checked at the statement's end,
 * when the bookings exist; the events' function reads the bookings with a snapshot of its own,
 * taken after `done` has drained the INSERT (a volatile function sees what the statement
 * calling it has written so far). Each seat is found by its primary key, a probe per seat
 * whatever the tables' statistics, so the plan can be kept per connection (shared/db/prepared.ts).
 */
export const writeDecisions = (
  showId: string,
  rows: DecisionRow[],
  holdSeconds: number,
  events: { types: BookingEventType[]; bookingIds: string[] },
): SQL => sql`
  WITH written AS (${insertBookings(
    showId,
    sql`jsonb_to_recordset(${JSON.stringify(rows)}::jsonb) AS r(
      id uuid, customer_email text, seat_count int, requested_section text, requested_seats text[],
      status text, failure_reason text, idempotency_key text, accepted_at timestamptz,
      seat_ids int[], seat_labels text[])`,
    holdSeconds,
  )}),
  held AS (
    -- The seats of the bookings written, not of the rows sent: one that another worker decided
    -- meanwhile is not written, and its seats stay as they are (the caller rolls back).
    UPDATE seats s
    SET status = 'HELD', booking_id = w.id, hold_expires_at = w.hold_expires_at
    FROM written w CROSS JOIN LATERAL unnest(w.seat_ids) AS v(seat_id)
    WHERE s.id = v.seat_id AND s.status = 'AVAILABLE'
    RETURNING s.id
  ),
  done AS MATERIALIZED (SELECT count(*) AS n FROM written),
  recorded AS MATERIALIZED (
    SELECT record_booking_events(${sql.param(events.types)}::text[], ${sql.param(events.bookingIds)}::uuid[]) AS events
    FROM done
  )
  SELECT ${decidedColumns('w')}, (SELECT count(*) FROM held)::int AS seats_held, (SELECT events FROM recorded) AS events
  FROM written w`;

/**
 * The one INSERT of decided bookings (`writeDecisions`, and `firstLook` for a sold-out batch).
 * `source` yields the decided requests as `r`, with the columns of `DecisionRow`.
 */
function insertBookings(showId: string, source: SQL, holdSeconds: number): SQL {
  return sql`
  INSERT INTO bookings (id, show_id, customer_email, seat_count, requested_section, requested_seats,
                        status, failure_reason, idempotency_key, accepted_at, decided_at, updated_at,
                        hold_expires_at, seat_ids, seat_labels, total_cents, waitlisted_at)
  SELECT r.id, ${showId}, r.customer_email, r.seat_count, r.requested_section, r.requested_seats,
         r.status, r.failure_reason, r.idempotency_key, r.accepted_at, clock.at, clock.at,
         CASE WHEN r.status = 'HELD' THEN clock.at + make_interval(secs => ${holdSeconds}) END,
         r.seat_ids, r.seat_labels,
         -- Priced here, from the seats this transaction has locked: no price travels in the job.
         (SELECT coalesce(sum(price_cents), 0) FROM seats WHERE id = ANY(r.seat_ids)),
         -- Milliseconds, as the list's cursors carry them (pagination.ts), so a page never repeats an entry.
         CASE WHEN r.status = 'WAITLISTED' THEN date_trunc('milliseconds', clock.at) END
  FROM ${source}
  CROSS JOIN (SELECT clock_timestamp() AS at) AS clock
  ON CONFLICT (id) DO NOTHING
  RETURNING ${decidedColumns()}, seat_ids`;
}

/**
 * Points the claimed seats at their bookings (the seats' foreign key needs the booking rows
 * first). Only AVAILABLE seats are touched, so a row count short of the seats given means the
 * locks did not hold what the claim saw: the caller must not commit.
 */
export const holdSeats = (seatIds: number[], bookingIds: string[]): SQL => sql`
  UPDATE seats s
  SET status = 'HELD', booking_id = v.booking_id, hold_expires_at = b.hold_expires_at
  FROM unnest(${sql.param(seatIds)}::int[], ${sql.param(bookingIds)}::uuid[]) AS v(seat_id, booking_id)
  JOIN bookings b ON b.id = v.booking_id
  WHERE s.id = v.seat_id AND s.status = 'AVAILABLE'`;
