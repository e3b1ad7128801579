import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { decideBookings, type DecideSettings } from '../shared/booking/decide.js';
import { confirmBooking } from '../shared/booking/settle.js';
import { createShow, generalAdmission, loadLayout } from '../shared/booking/shows.js';
import type { BookingJob } from '../shared/queue/catalog.js';
import { openTestContext } from './support/context.js';
import { waitFor } from './support/wait.js';

/**
 * A hold lasts its full length from the moment it is given, however long its claim waited on
 * locks first; and a lapse that happened during the wait counts. Each test holds a lock from
 * another connection until the waiting transaction has waited past the hold's length (on
 * Postgres's clock, which is what decides lapses), then lets it go and checks what it decided.
 */

const ctx = await openTestContext({ DB_POOL_SIZE: '2' });

const HOLD_SECONDS = 1;
const settings: DecideSettings = { holdSeconds: HOLD_SECONDS, maxSeatsPerCustomer: 10, waitlistOfferSeconds: 900 };

const request = (showId: string, email: string, seats: string[] | null): BookingJob => ({
  id: randomUUID(),
  show_id: showId,
  customer_email: email,
  seat_count: seats?.length ?? 1,
  section: null,
  seats,
  accepted_at: new Date().toISOString(),
  idempotency_key: null,
  request_id: 'hold-timing-test',
});

async function newShow(seats: number): Promise<string> {
  return (await createShow(ctx.db, { name: 'Hold timing', startTime: new Date('2031-01-01T20:00:00Z'), layout: generalAdmission(seats) })).id;
}

/**
 * Runs `blocked` while `blocker` (an open transaction on its own connection, already holding a
 * lock `blocked` needs) keeps it waiting until the waiter's transaction is older than the hold
 * length plus `extraSeconds`; then commits the blocker. Returns the blocked result and the
 * Postgres time at which the lock was released.
 */
async function whileBlocked<T>(
  blocker: pg.Client,
  blocked: () => Promise<T>,
  extraSeconds = 0.5,
): Promise<{ result: T; releasedAt: Date }> {
  const pending = blocked();
  // Wait for the waiter to be stuck on a lock, then for its transaction to age past the hold.
  await waitFor(async () => {
    const { rows } = await ctx.pool.query<{ aged: boolean }>(
      `SELECT clock_timestamp() - xact_start > make_interval(secs => $1) AS aged
       FROM pg_stat_activity
       WHERE datname = current_database() AND wait_event_type = 'Lock' AND pid <> $2`,
      [HOLD_SECONDS + extraSeconds, (blocker as unknown as { processID: number }).processID],
    );
    return rows[0]?.aged ? true : undefined;
  }, 'the claim to wait on the lock past the hold length');
  const { rows } = await blocker.query<{ at: Date }>('SELECT clock_timestamp() AS at');
  await blocker.query('COMMIT');
  return { result: await pending, releasedAt: rows[0]!.at };
}

async function blockerClient(): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: ctx.databaseUrl });
  await client.connect();
  await client.query('BEGIN');
  return client;
}

describe('holds are measured from when they are given', () => {
  it('a claim that waited on the customer lock still hands out a full hold', async () => {
    const showId = await newShow(10);
    const layout = (await loadLayout(ctx.db, showId))!;
    const email = `waiter-${randomUUID()}@example.com`;
    const blocker = await blockerClient();
    try {
      // The same advisory lock a claim takes for this customer and show (decide.ts, step 2).
      await blocker.query(`SELECT pg_advisory_xact_lock(hashtextextended($1 || '|' || $2, 0))`, [showId, email]);
      const job = request(showId, email, null);
      const { result, releasedAt } = await whileBlocked(blocker, () => decideBookings(ctx.db, layout, [job], settings));
      const decision = result.get(job.id);
      expect(decision?.kind).toBe('decided');
      if (decision?.kind !== 'decided') return;
      expect(decision.booking.status).toBe('HELD');
      // Given after the lock was released, lasting the whole hold from then.
      expect(decision.booking.decidedAt.getTime()).toBeGreaterThanOrEqual(releasedAt.getTime());
      expect(decision.booking.holdExpiresAt!.getTime()).toBeGreaterThanOrEqual(releasedAt.getTime() + HOLD_SECONDS * 1_000);
      const { rows } = await ctx.pool.query<{ live: boolean }>(
        `SELECT status = 'HELD' AND hold_expires_at > decided_at + make_interval(secs => $2) - interval '1 millisecond' AS live
         FROM bookings WHERE id = $1`,
        [job.id, HOLD_SECONDS],
      );
      expect(rows[0]?.live).toBe(true);
    } finally {
      await blocker.end();
    }
  });

  it('a claim for specific seats sees a hold that lapsed while it waited, and takes the seat', async () => {
    const showId = await newShow(4);
    const layout = (await loadLayout(ctx.db, showId))!;
    // Someone holds seat 1 for HOLD_SECONDS.
    const first = request(showId, `first-${randomUUID()}@example.com`, ['1']);
    const held = (await decideBookings(ctx.db, layout, [first], settings)).get(first.id);
    expect(held?.kind === 'decided' && held.booking.status).toBe('HELD');

    const email = `second-${randomUUID()}@example.com`;
    const blocker = await blockerClient();
    try {
      await blocker.query(`SELECT pg_advisory_xact_lock(hashtextextended($1 || '|' || $2, 0))`, [showId, email]);
      const second = request(showId, email, ['1']);
      // Its transaction begins before the first hold lapses and waits until after.
      const { result } = await whileBlocked(blocker, () => decideBookings(ctx.db, layout, [second], settings));
      const decision = result.get(second.id);
      expect(decision?.kind === 'decided' && decision.booking.status).toBe('HELD');
      const { rows } = await ctx.pool.query<{ status: string }>(`SELECT status FROM bookings WHERE id = $1`, [first.id]);
      expect(rows[0]?.status).toBe('EXPIRED');
    } finally {
      await blocker.end();
    }
  });

  it('a confirm that waited on the booking lock refuses a hold that lapsed during the wait', async () => {
    const showId = await newShow(2);
    const layout = (await loadLayout(ctx.db, showId))!;
    const job = request(showId, `payer-${randomUUID()}@example.com`, null);
    // A long hold, so it is live when the confirm's transaction begins.
    const long: DecideSettings = { ...settings, holdSeconds: 60 };
    await decideBookings(ctx.db, layout, [job], long);
    const blocker = await blockerClient();
    try {
      // Shorten the hold to lapse during the wait, holding the booking's row lock meanwhile
      // (as a sweep or another settle would).
      await blocker.query(
        `UPDATE bookings SET hold_expires_at = clock_timestamp() + make_interval(secs => $2) WHERE id = $1`,
        [job.id, HOLD_SECONDS],
      );
      await blocker.query(`UPDATE seats SET hold_expires_at = b.hold_expires_at FROM bookings b WHERE b.id = $1 AND seats.booking_id = b.id`, [
        job.id,
      ]);
      const { result } = await whileBlocked(blocker, () => confirmBooking(ctx.db, job.id, true, { offerSeconds: 900 }));
      expect(result.kind).toBe('rejected');
      if (result.kind === 'rejected') expect(result.booking.status).toBe('EXPIRED');
    } finally {
      await blocker.end();
    }
  });
});
