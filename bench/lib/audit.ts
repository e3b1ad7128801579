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
 *
 * A scheduled sale's run (`--sales-open-in`) adds the opening's checks (auditOpening): the
 * published draw is recomputed here from its revealed seed with this file's own few lines of
 * HMAC, not the service's code, and the decisions are checked to follow the line it makes.
 */

import { createHash, createHmac } from 'node:crypto';
import type { PublishedDraw, ShowOpening } from './sale-opening.js';

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
  // A burst has just written tens of thousands of rows that autovacuum has not analysed yet; on
  // stale statistics the sold-out check once picked a plan that ran for minutes (scenario (c),
  // second round of an A/B). Fresh statistics first, a fraction of a second.
  await db.query('ANALYZE seats, bookings');
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

export type OpeningScope = {
  /** Each show's opening and commitment as published at its creation, before anyone waited. */
  openings: ShowOpening[];
  /** Each show's draw as GET /shows/:id/draw published it. */
  draws: Map<string, PublishedDraw>;
  acceptedIds: string[];
  /** Requests accepted this close to the opening may fall either side of the draw. */
  graceSeconds: number;
  maxOvertakes: number;
};

export type OpeningAudit = {
  checks: AuditCheck[];
  /** Pairs (earlier refused, later seated), as issue 13 counts them. */
  overtakes: number;
  /** Refused entries that at least one later entry overtook. */
  overtaken: number;
  /** Over every show: from its sales_open_at to its first and last decision. */
  openingToFirstDecisionMs: number | null;
  openingToLastDecisionMs: number | null;
};

type LineRow = {
  id: string;
  show_id: string;
  accepted_ms: number;
  decided_ms: number;
  status: string;
  failure_reason: string | null;
  seat_count: number;
  requested_section: string | null;
  best_available: boolean;
  seats: number;
};

/** HMAC-SHA256(key = seed, message = the booking id as a lowercase UUID, UTF-8), lowercase hex: the draw's key (issue 13). */
export const drawKeyOf = (seed: Buffer, bookingId: string) => createHmac('sha256', seed).update(bookingId.toLowerCase(), 'utf8').digest('hex');

/**
 * The checks of a scheduled sale's opening, per show:
 *
 * 7. the draw verifies: SHA-256 of the revealed seed is the commitment published at creation
 *    (and still in Postgres), the keys ascend, and they are exactly the HMACs of the requests
 *    that waited: each key is one accepted request's, every request accepted before the
 *    opening (by more than the grace) is in it, none accepted after it (by more than the grace);
 * 8. decisions follow the line (the draw's order, then later arrivals first come, first
 *    served): an **overtake** is a pair of best-available requests of one show and section
 *    where the later entry got seats while the earlier one, asking for as many or more, was
 *    refused (SOLD_OUT or SEATS_UNAVAILABLE). Only decisions before the show's first released
 *    seat count (a released seat rightly goes to whoever is next). At most `maxOvertakes`.
 */
export async function auditOpening(db: Queryable, scope: OpeningScope): Promise<OpeningAudit> {
  const showIds = scope.openings.map((opening) => opening.showId);
  const { rows: showRows } = await db.query(
    `SELECT id::text AS id, seed_sha256, extract(epoch FROM sales_open_at) * 1000 AS open_ms FROM shows WHERE id = ANY($1::uuid[])`,
    [showIds],
  );
  const { rows } = (await db.query(
    `SELECT id::text AS id, show_id::text AS show_id, extract(epoch FROM accepted_at) * 1000 AS accepted_ms,
            extract(epoch FROM decided_at) * 1000 AS decided_ms, status, failure_reason, seat_count,
            requested_section, requested_seats IS NULL AS best_available, cardinality(seat_ids) AS seats
     FROM bookings WHERE id = ANY($1::uuid[]) AND show_id = ANY($2::uuid[])`,
    [scope.acceptedIds, showIds],
  )) as { rows: LineRow[] };
  const { rows: releases } = await db.query(
    `SELECT show_id::text AS show_id, extract(epoch FROM min(updated_at)) * 1000 AS first_ms FROM bookings
     WHERE show_id = ANY($1::uuid[]) AND cardinality(seat_ids) > 0
       AND (status IN ('EXPIRED', 'CANCELLED') OR (status = 'FAILED' AND failure_reason = 'PAYMENT_FAILED'))
     GROUP BY show_id`,
    [showIds],
  );
  const firstRelease = new Map<string, number>(releases.map((row: { show_id: string; first_ms: string }) => [row.show_id, Number(row.first_ms)]));
  const graceMs = scope.graceSeconds * 1_000;

  const drawProblems: string[] = [];
  const overtakeExamples: string[] = [];
  let overtakes = 0;
  const overtakenIds = new Set<string>();
  let first: number | null = null;
  let last: number | null = null;
  for (const opening of scope.openings) {
    const show = showRows.find((row: { id: string }) => row.id === opening.showId) as { seed_sha256: string; open_ms: string } | undefined;
    const draw = scope.draws.get(opening.showId);
    const requests = rows.filter((row) => row.show_id === opening.showId).map((row) => ({ ...row, accepted_ms: Number(row.accepted_ms), decided_ms: Number(row.decided_ms) }));
    if (!show || !draw) {
      drawProblems.push(`show ${opening.showId}: ${show ? 'no draw was published' : 'not in the database'}`);
      continue;
    }
    const openMs = Number(show.open_ms);
    for (const row of requests) {
      first = Math.min(first ?? Infinity, row.decided_ms - openMs);
      last = Math.max(last ?? -Infinity, row.decided_ms - openMs);
    }

    const seed = Buffer.from(draw.seed, 'hex');
    const commitment = createHash('sha256').update(seed).digest('hex');
    if (seed.length !== 32 || !/^[0-9a-f]{64}$/.test(draw.seed)) drawProblems.push(`show ${opening.showId}: the seed is not 32 bytes of lowercase hex`);
    for (const [what, value] of [['published at creation', opening.seedSha256], ['in the draw', draw.seed_sha256], ['in Postgres', show.seed_sha256]] as const) {
      if (value !== commitment) drawProblems.push(`show ${opening.showId}: SHA-256(seed) ${commitment} is not the commitment ${what} (${value})`);
    }
    if (draw.entries !== draw.keys.length) drawProblems.push(`show ${opening.showId}: ${draw.entries} entries but ${draw.keys.length} keys`);
    const descending = draw.keys.findIndex((key, index) => index > 0 && draw.keys[index - 1]! > key);
    if (descending !== -1) drawProblems.push(`show ${opening.showId}: keys not ascending at place ${descending}`);

    const keyOf = new Map(requests.map((row) => [row.id, drawKeyOf(seed, row.id)]));
    const byKey = new Map([...keyOf].map(([id, key]) => [key, id]));
    const rank = new Map<string, number>();
    draw.keys.forEach((key, index) => {
      const id = byKey.get(key);
      if (id === undefined) drawProblems.push(`show ${opening.showId}: key ${key} at place ${index} is no accepted request's HMAC`);
      else rank.set(id, index);
    });
    for (const row of requests) {
      const drawn = rank.has(row.id);
      if (!drawn && row.accepted_ms < openMs - graceMs) drawProblems.push(`request ${row.id} waited (accepted ${new Date(row.accepted_ms).toISOString()}) but is not in the draw`);
      if (drawn && row.accepted_ms > openMs + graceMs) drawProblems.push(`request ${row.id} came after the opening (accepted ${new Date(row.accepted_ms).toISOString()}) but is in the draw`);
    }

    // The line: the draw's order, then the later arrivals by acceptance.
    const line = [...requests].sort((a, b) => {
      const ra = rank.get(a.id);
      const rb = rank.get(b.id);
      if (ra !== undefined || rb !== undefined) return (ra ?? Infinity) - (rb ?? Infinity);
      return a.accepted_ms - b.accepted_ms || (a.id < b.id ? -1 : 1);
    });
    const releasedAt = firstRelease.get(opening.showId) ?? Infinity;
    // Per section asked for: refused entries so far, by seat count asked.
    const refusedSoFar = new Map<string, number[]>();
    // The refused entries not overtaken yet, to count each overtaken entry once.
    const refusedEntries = new Map<string, Array<{ id: string; seatCount: number }>>();
    for (const row of line) {
      if (!row.best_available || row.decided_ms >= releasedAt) continue;
      const scopeKey = row.requested_section ?? '';
      const refused = refusedSoFar.get(scopeKey) ?? [];
      refusedSoFar.set(scopeKey, refused);
      const entries = refusedEntries.get(scopeKey) ?? [];
      refusedEntries.set(scopeKey, entries);
      if (row.status === 'FAILED' && (row.failure_reason === 'SOLD_OUT' || row.failure_reason === 'SEATS_UNAVAILABLE')) {
        refused[row.seat_count] = (refused[row.seat_count] ?? 0) + 1;
        entries.push({ id: row.id, seatCount: row.seat_count });
      } else if (row.seats > 0) {
        const earlier = refused.reduce((sum, count, seatCount) => sum + (seatCount >= row.seat_count ? (count ?? 0) : 0), 0);
        if (earlier > 0) {
          overtakes += earlier;
          const stillWaiting = entries.filter((entry) => entry.seatCount < row.seat_count);
          for (const entry of entries) if (entry.seatCount >= row.seat_count) overtakenIds.add(entry.id);
          entries.splice(0, entries.length, ...stillWaiting);
          overtakeExamples.push(`request ${row.id} (${row.seat_count} seat(s)${row.requested_section ? ` in ${row.requested_section}` : ''}) got seats after ${earlier} earlier entr(ies) were refused`);
        }
      }
    }
  }

  const checks = [
    check('draw-verifies', 'The draw verifies: commitment, keys recomputed from the revealed seed, every waiting request', drawProblems.length, drawProblems),
    {
      ...check('line-order', `Decisions follow the line (overtakes ${overtakes}, at most ${scope.maxOvertakes})`, overtakes, overtakeExamples),
      ok: overtakes <= scope.maxOvertakes,
    },
  ];
  return { checks, overtakes, overtaken: overtakenIds.size, openingToFirstDecisionMs: first, openingToLastDecisionMs: last };
}

async function availableWhileWaitlisted(db: Queryable, shows: string[]): Promise<AuditCheck> {
  // Only columns every build has (a --baseline build may predate the waiting list): an entry
  // joined the list when it was decided, so decided_at orders the examples as the list does.
  const { rows } = await db.query(
    `SELECT w.show_id::text AS show_id, w.id::text AS id, w.seat_count, w.requested_section, free.seats AS free
     FROM bookings w
     CROSS JOIN LATERAL (
       SELECT count(*)::int AS seats FROM seats s
       WHERE s.show_id = w.show_id AND s.status = 'AVAILABLE' AND (w.requested_section IS NULL OR s.section = w.requested_section)
     ) AS free
     WHERE w.show_id = ANY($1::uuid[]) AND w.status = 'WAITLISTED' AND free.seats >= w.seat_count
     ORDER BY w.show_id, w.decided_at, w.id`,
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
