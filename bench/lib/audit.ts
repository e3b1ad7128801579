/**
 * The correctness audit, read from Postgres after a run. It trusts nothing the API or the
 * generator said: every check is a query over the seats and bookings tables of the shows the
 * run used, and each names its violations.
 *
 * 1. no seat is held or booked by two bookings (live bookings' seat lists never overlap);
 * 2. held + booked <= capacity per show (and the seat rows match the show's size);
 * 3. every accepted request reached a decision (each accepted id has a bookings row);
 * 4. the seat map agrees with the bookings, both ways;
 * 5. no seat was left AVAILABLE while a single-seat best-available request in its scope (the
 *    show, or the section asked for) failed SOLD_OUT. Seats released by a cancel, a payment
 *    failure or an expiry *after* that decision are fine, so a seat counts against the run only
 *    if it was free (never released, or released at least `graceSeconds` earlier) or its hold
 *    had lapsed at the last such SOLD_OUT; the grace absorbs clock and commit-order skew
 *    between two transactions that ran at nearly the same moment;
 * 6. no seat is AVAILABLE while a WAITLISTED entry of its scope (the show, or the section the
 *    entry named) fits: the free seats of the scope are fewer than the entry's seat_count. Seats
 *    freed after a sell-out are offered to the waiting list in the transaction that frees them
 *    (shared/booking/waitlist.ts), so once that commits no such seat may be left.
 */

export type Queryable = { query: (text: string, values?: unknown[]) => Promise<{ rows: any[] }> };

export type AuditCheck = {
  name: string;
  title: string;
  ok: boolean;
  violations: number;
  /** A few violations, readable. */
  examples: string[];
};

export type AuditReport = {
  ok: boolean;
  shows: number;
  acceptedChecked: number;
  checks: AuditCheck[];
};

export type AuditScope = {
  /** Shows the run used; all shows when omitted. */
  showIds?: string[];
  /** Request ids the API accepted (202) during the run. */
  acceptedIds: string[];
  graceSeconds?: number;
};

const EXAMPLES = 5;

function check(name: string, title: string, violations: number, examples: string[]): AuditCheck {
  return { name, title, ok: violations === 0, violations, examples: examples.slice(0, EXAMPLES) };
}

export async function auditBookings(db: Queryable, scope: AuditScope): Promise<AuditReport> {
  const shows: string[] =
    scope.showIds ?? (await db.query('SELECT id::text FROM shows ORDER BY id')).rows.map((row: { id: string }) => row.id);
  const grace = scope.graceSeconds ?? 2;
  const checks = [
    await seatsInTwoBookings(db, shows),
    await capacity(db, shows),
    await lostRequests(db, scope.acceptedIds),
    await seatMapAgrees(db, shows),
    await availableWhileSoldOut(db, shows, grace),
    await availableWhileWaitlisted(db, shows),
  ];
  return { ok: checks.every((c) => c.ok), shows: shows.length, acceptedChecked: scope.acceptedIds.length, checks };
}

export async function seatsInTwoBookings(db: Queryable, shows: string[]): Promise<AuditCheck> {
  const { rows } = await db.query(
    `SELECT seat_id, array_agg(b.id::text ORDER BY b.id) AS bookings
     FROM bookings b CROSS JOIN LATERAL unnest(b.seat_ids) AS seat_id
     WHERE b.show_id = ANY($1::uuid[]) AND b.status IN ('HELD', 'CONFIRMED')
     GROUP BY seat_id HAVING count(*) > 1
     ORDER BY seat_id`,
    [shows],
  );
  return check(
    'no-double-booking',
    'No seat held or booked by two bookings',
    rows.length,
    rows.map((row: { seat_id: number; bookings: string[] }) => `seat ${row.seat_id} in bookings ${row.bookings.join(', ')}`),
  );
}

export type ShowCapacity = { id: string; total_seats: number; seat_rows: number; taken: number; live_booking_seats: number };

/** Per show: its capacity, its seat rows, the seats not AVAILABLE and the seats its live bookings list. */
export async function capacityByShow(db: Queryable, shows: string[]): Promise<ShowCapacity[]> {
  const { rows } = await db.query(
    `SELECT sh.id::text AS id, sh.total_seats,
       (SELECT count(*) FROM seats s WHERE s.show_id = sh.id)::int AS seat_rows,
       (SELECT count(*) FROM seats s WHERE s.show_id = sh.id AND s.status <> 'AVAILABLE')::int AS taken,
       (SELECT coalesce(sum(cardinality(b.seat_ids)), 0) FROM bookings b
         WHERE b.show_id = sh.id AND b.status IN ('HELD', 'CONFIRMED'))::int AS live_booking_seats
     FROM shows sh WHERE sh.id = ANY($1::uuid[])`,
    [shows],
  );
  return rows as ShowCapacity[];
}

async function capacity(db: Queryable, shows: string[]): Promise<AuditCheck> {
  const bad = (await capacityByShow(db, shows)).filter(
    (row) => row.seat_rows !== row.total_seats || row.taken > row.total_seats || row.live_booking_seats > row.total_seats,
  );
  return check(
    'capacity',
    'Held + booked <= capacity per show',
    bad.length,
    bad.map(
      (row) =>
        `show ${row.id}: capacity ${row.total_seats}, seat rows ${row.seat_rows}, seats taken ${row.taken}, seats in live bookings ${row.live_booking_seats}`,
    ),
  );
}

export async function lostRequests(db: Queryable, acceptedIds: string[]): Promise<AuditCheck> {
  const { rows } = await db.query(
    `SELECT a.id::text AS id
     FROM unnest($1::uuid[]) AS a(id) LEFT JOIN bookings b ON b.id = a.id
     WHERE b.id IS NULL`,
    [acceptedIds],
  );
  return check(
    'no-lost-request',
    'Every accepted request reached a decision',
    rows.length,
    rows.map((row: { id: string }) => `request ${row.id} was accepted but has no booking`),
  );
}

/** Seats that say they are taken but do not point at a live booking of the matching status that lists them. */
export async function seatsDisagreeingWithBookings(db: Queryable, shows: string[]): Promise<string[]> {
  const { rows } = await db.query(
    `SELECT s.id AS seat_id, s.label, s.status, s.booking_id::text AS booking_id, b.status AS booking_status
     FROM seats s LEFT JOIN bookings b ON b.id = s.booking_id
     WHERE s.show_id = ANY($1::uuid[]) AND s.status <> 'AVAILABLE'
       AND (b.id IS NULL OR NOT (s.id = ANY(b.seat_ids))
            OR (s.status = 'HELD' AND b.status <> 'HELD')
            OR (s.status = 'BOOKED' AND b.status <> 'CONFIRMED'))
     ORDER BY s.id`,
    [shows],
  );
  return rows.map(
    (row: { seat_id: number; label: string; status: string; booking_id: string; booking_status: string | null }) =>
      `seat ${row.seat_id} (${row.label}) is ${row.status} for booking ${row.booking_id} (${row.booking_status ?? 'missing'}) that does not hold it`,
  );
}

/** Seats live bookings list that do not point back at them with the matching status and label. */
export async function bookingSeatsNotPointingBack(db: Queryable, shows: string[]): Promise<string[]> {
  const { rows } = await db.query(
    `SELECT b.id::text AS booking_id, b.status, x.seat_id, x.label, s.status AS seat_status,
            s.booking_id::text AS seat_booking, s.label AS seat_label
     FROM bookings b
     CROSS JOIN LATERAL unnest(b.seat_ids, b.seat_labels) AS x(seat_id, label)
     LEFT JOIN seats s ON s.id = x.seat_id
     WHERE b.show_id = ANY($1::uuid[]) AND b.status IN ('HELD', 'CONFIRMED')
       AND (s.id IS NULL OR s.show_id <> b.show_id OR s.booking_id IS DISTINCT FROM b.id OR s.label <> x.label
            OR (b.status = 'HELD' AND s.status <> 'HELD')
            OR (b.status = 'CONFIRMED' AND s.status <> 'BOOKED'))
     ORDER BY b.id, x.seat_id`,
    [shows],
  );
  return rows.map(
    (row: { booking_id: string; status: string; seat_id: number; label: string; seat_status: string | null; seat_booking: string | null }) =>
      `booking ${row.booking_id} (${row.status}) lists seat ${row.seat_id} (${row.label}) but the seat is ${row.seat_status ?? 'missing'} for ${row.seat_booking ?? 'no booking'}`,
  );
}

async function seatMapAgrees(db: Queryable, shows: string[]): Promise<AuditCheck> {
  const examples = [...(await seatsDisagreeingWithBookings(db, shows)), ...(await bookingSeatsNotPointingBack(db, shows))];
  return check('seat-map-agrees', 'Seat map agrees with the bookings', examples.length, examples);
}

async function availableWhileSoldOut(db: Queryable, shows: string[], graceSeconds: number): Promise<AuditCheck> {
  const { rows } = await db.query(
    `WITH sold_out AS (
       SELECT show_id, requested_section, max(decided_at) AS last_sold_out, count(*)::int AS failed
       FROM bookings
       WHERE show_id = ANY($1::uuid[]) AND status = 'FAILED' AND failure_reason = 'SOLD_OUT'
         AND seat_count = 1 AND requested_seats IS NULL
       GROUP BY show_id, requested_section
     ), released AS (
       SELECT seat_id, max(b.updated_at) AS released_at
       FROM bookings b CROSS JOIN LATERAL unnest(b.seat_ids) AS seat_id
       WHERE b.show_id = ANY($1::uuid[]) AND b.status IN ('EXPIRED', 'CANCELLED', 'FAILED', 'REFUNDED')
       GROUP BY seat_id
     )
     SELECT so.show_id::text AS show_id, so.requested_section, so.failed, count(s.id)::int AS stranded,
            (array_agg(s.label ORDER BY s.id))[1:5] AS labels
     FROM sold_out so
     JOIN seats s ON s.show_id = so.show_id AND (so.requested_section IS NULL OR s.section = so.requested_section)
     LEFT JOIN released r ON r.seat_id = s.id
     WHERE (s.status = 'AVAILABLE' AND coalesce(r.released_at, '-infinity') < so.last_sold_out - make_interval(secs => $2))
        OR (s.status = 'HELD' AND s.hold_expires_at < so.last_sold_out - make_interval(secs => $2))
     GROUP BY so.show_id, so.requested_section, so.failed
     ORDER BY so.show_id`,
    [shows, graceSeconds],
  );
  const stranded = rows.reduce((sum: number, row: { stranded: number }) => sum + row.stranded, 0);
  return check(
    'no-seat-left-available',
    'No seat left AVAILABLE while single-seat requests failed SOLD_OUT',
    stranded,
    rows.map(
      (row: { show_id: string; requested_section: string | null; failed: number; stranded: number; labels: string[] }) =>
        `show ${row.show_id}${row.requested_section ? ` section ${row.requested_section}` : ''}: ${row.stranded} seat(s) free (e.g. ${row.labels.join(', ')}) while ${row.failed} single-seat request(s) failed SOLD_OUT`,
    ),
  );
}

async function availableWhileWaitlisted(db: Queryable, shows: string[]): Promise<AuditCheck> {
  const { rows } = await db.query(
    `SELECT w.show_id::text AS show_id, w.id::text AS id, w.seat_count, w.requested_section, free.seats AS free
     FROM bookings w
     CROSS JOIN LATERAL (
       SELECT count(*)::int AS seats FROM seats s
       WHERE s.show_id = w.show_id AND s.status = 'AVAILABLE' AND (w.requested_section IS NULL OR s.section = w.requested_section)
     ) AS free
     WHERE w.show_id = ANY($1::uuid[]) AND w.status = 'WAITLISTED' AND free.seats >= w.seat_count
     ORDER BY w.show_id, w.waitlisted_at, w.id`,
    [shows],
  );
  return check(
    'no-seat-available-while-waitlisted',
    'No seat AVAILABLE while a WAITLISTED entry of its scope fits',
    rows.length,
    rows.map(
      (row: { show_id: string; id: string; seat_count: number; requested_section: string | null; free: number }) =>
        `show ${row.show_id}${row.requested_section ? ` section ${row.requested_section}` : ''}: ${row.free} seat(s) free while entry ${row.id} waits for ${row.seat_count}`,
    ),
  );
}

/** The audit as lines of text for the terminal. */
export function formatAudit(report: AuditReport): string {
  const lines = [`Audit (${report.shows} show(s), ${report.acceptedChecked} accepted request(s)): ${report.ok ? 'PASS' : 'FAIL'}`];
  for (const c of report.checks) {
    lines.push(`  ${c.ok ? 'ok  ' : 'FAIL'} ${c.title}${c.ok ? '' : ` — ${c.violations} violation(s)`}`);
    for (const example of c.examples) lines.push(`         ${example}`);
  }
  return lines.join('\n');
}
