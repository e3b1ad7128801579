import { randomUUID } from 'node:crypto';
import type pg from 'pg';

/**
 * EXPLAIN (ANALYZE, BUFFERS) of the statements a worker runs for every batch, on a real show,
 * inside a transaction that is rolled back (the FOR UPDATE locks are taken for real and
 * released at once). The SQL mirrors shared/booking/allocate.ts and decide.ts: if those
 * change, change these. pg_stat_statements would be better, but it must be preloaded at server
 * start, which this shared Postgres is not.
 */

type Statement = { name: string; sql: string; values: (showId: string, ids: { seatIds: number[]; bookingIds: string[] }) => unknown[] };

const STATEMENTS: Statement[] = [
  {
    name: 'lockFirstAvailable (single seats, batch of 200, nothing excluded)',
    sql: `SELECT id, label FROM seats
          WHERE show_id = $1 AND status = 'AVAILABLE' AND id <> ALL($2::int[])
          ORDER BY section_rank, row, number LIMIT 200 FOR UPDATE SKIP LOCKED`,
    values: (showId) => [showId, []],
  },
  {
    name: 'lockFirstAvailable (200 seats already reserved in the batch excluded)',
    sql: `SELECT id, label FROM seats
          WHERE show_id = $1 AND status = 'AVAILABLE' AND id <> ALL($2::int[])
          ORDER BY section_rank, row, number LIMIT 200 FOR UPDATE SKIP LOCKED`,
    values: (showId, ids) => [showId, ids.seatIds],
  },
  {
    name: 'countClaimable (the shortfall check before SOLD_OUT)',
    sql: `SELECT
            (SELECT count(*)::int FROM seats WHERE show_id = $1 AND status = 'AVAILABLE' AND id <> ALL($2::int[])) AS available,
            EXISTS (SELECT 1 FROM bookings WHERE status = 'HELD' AND hold_expires_at <= now() AND show_id = $1) AS lapsed`,
    values: (showId, ids) => [showId, ids.seatIds],
  },
  {
    name: 'already decided? (dedupe of a batch of 200 ids)',
    sql: `SELECT id, status, failure_reason, seat_labels, hold_expires_at, decided_at FROM bookings WHERE id = ANY($1::uuid[])`,
    values: (_showId, ids) => [ids.bookingIds],
  },
  {
    name: 'per-customer live seats (batch of 200 emails)',
    sql: `SELECT customer_email, sum(cardinality(seat_ids))::int AS seats FROM bookings
          WHERE show_id = $1 AND customer_email = ANY($2::text[])
            AND (status = 'CONFIRMED' OR (status = 'HELD' AND hold_expires_at > now()))
          GROUP BY customer_email`,
    values: (showId) => [showId, Array.from({ length: 200 }, (_, i) => `explain-${i}@bench.example`)],
  },
];

export async function explainClaims(pool: pg.Pool, showId: string): Promise<string> {
  const client = await pool.connect();
  try {
    const seatRows = await client.query('SELECT id FROM seats WHERE show_id = $1 ORDER BY id LIMIT 200', [showId]);
    const bookingRows = await client.query('SELECT id::text FROM bookings WHERE show_id = $1 LIMIT 200', [showId]);
    // Before any booking exists, look up 200 fresh ids, as the first batch of a burst does.
    const bookingIds = bookingRows.rows.length > 0 ? bookingRows.rows.map((r: { id: string }) => r.id) : Array.from({ length: 200 }, () => randomUUID());
    const ids = { seatIds: seatRows.rows.map((r: { id: number }) => r.id), bookingIds };
    const parts: string[] = [];
    for (const statement of STATEMENTS) {
      await client.query('BEGIN');
      try {
        const { rows } = await client.query(`EXPLAIN (ANALYZE, BUFFERS) ${statement.sql}`, statement.values(showId, ids));
        // Long id lists in filters would drown the plan; the shape and timings are what matter.
        const plan = rows.map((row: Record<string, string>) => {
          const line = row['QUERY PLAN']!;
          return line.length > 160 ? `${line.slice(0, 157)}...` : line;
        });
        parts.push(`-- ${statement.name}\n${plan.join('\n')}`);
      } finally {
        await client.query('ROLLBACK');
      }
    }
    return parts.join('\n\n');
  } finally {
    client.release();
  }
}
