import { randomUUID } from 'node:crypto';
import type { SQL } from 'drizzle-orm';
import { PgDialect } from 'drizzle-orm/pg-core';
import type pg from 'pg';
import { decidedAlready, liveSeatsByCustomer, soldOut } from '../../shared/booking/sql/decisions.js';
import { claimableSeats, firstAvailableSeatsForUpdate } from '../../shared/booking/sql/seats.js';

/**
 * EXPLAIN (ANALYZE, BUFFERS) of the statements a worker runs for every batch, on a real show,
 * inside a transaction that is rolled back (the FOR UPDATE locks are taken for real and
 * released at once). The statements are the product's own (shared/booking/sql/), rendered by
 * drizzle's Postgres dialect. pg_stat_statements would be better, but it must be preloaded at
 * server start, which this shared Postgres is not.
 */

type Ids = { seatIds: number[]; bookingIds: string[] };
type Statement = { name: string; statement: (showId: string, ids: Ids) => SQL };

const BATCH = 200;

const STATEMENTS: Statement[] = [
  {
    name: `lockFirstAvailable (single seats, batch of ${BATCH}, nothing excluded)`,
    statement: (showId) => firstAvailableSeatsForUpdate(showId, null, BATCH, []),
  },
  {
    name: `lockFirstAvailable (${BATCH} seats already reserved in the batch excluded)`,
    statement: (showId, ids) => firstAvailableSeatsForUpdate(showId, null, BATCH, ids.seatIds),
  },
  {
    name: 'countClaimable (the shortfall check before SOLD_OUT)',
    statement: (showId, ids) => claimableSeats(showId, null, ids.seatIds),
  },
  { name: 'sold-out fast path', statement: (showId) => soldOut(showId) },
  {
    name: `already decided? (dedupe of a batch of ${BATCH} ids)`,
    statement: (_showId, ids) => decidedAlready(ids.bookingIds),
  },
  {
    name: `per-customer live seats (batch of ${BATCH} emails)`,
    statement: (showId) => liveSeatsByCustomer(showId, Array.from({ length: BATCH }, (_, i) => `explain-${i}@bench.example`)),
  },
];

const dialect = new PgDialect();

export async function explainClaims(pool: pg.Pool, showId: string): Promise<string> {
  const client = await pool.connect();
  try {
    const seatRows = await client.query('SELECT id FROM seats WHERE show_id = $1 ORDER BY id LIMIT $2', [showId, BATCH]);
    const bookingRows = await client.query('SELECT id::text FROM bookings WHERE show_id = $1 LIMIT $2', [showId, BATCH]);
    // Before any booking exists, look up fresh ids, as the first batch of a burst does.
    const bookingIds =
      bookingRows.rows.length > 0 ? bookingRows.rows.map((r: { id: string }) => r.id) : Array.from({ length: BATCH }, () => randomUUID());
    const ids: Ids = { seatIds: seatRows.rows.map((r: { id: number }) => r.id), bookingIds };
    const parts: string[] = [];
    for (const { name, statement } of STATEMENTS) {
      const query = dialect.sqlToQuery(statement(showId, ids));
      await client.query('BEGIN');
      try {
        const { rows } = await client.query(`EXPLAIN (ANALYZE, BUFFERS) ${query.sql}`, query.params);
        // Long id lists in filters would drown the plan; the shape and timings are what matter.
        const plan = rows.map((row: Record<string, string>) => {
          const line = row['QUERY PLAN']!;
          return line.length > 160 ? `${line.slice(0, 157)}...` : line;
        });
        parts.push(`-- ${name}\n${plan.join('\n')}`);
      } finally {
        await client.query('ROLLBACK');
      }
    }
    return parts.join('\n\n');
  } finally {
    client.release();
  }
}
