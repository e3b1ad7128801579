import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { decideBookings, type DecideSettings, type Decision } from '../shared/booking/decide.js';
import { createShow, generalAdmission, LayoutCache, loadLayout } from '../shared/booking/shows.js';
import { webhooks } from '../shared/db/schema/index.js';
import type { BookingJob } from '../shared/queue/catalog.js';
import { createLogger } from '../shared/logger.js';
import { createBookingProcessor, SOLD_OUT_BATCH_SIZE } from '../services/worker/jobs/process-bookings.js';
import { openTestContext } from './support/context.js';
import { countingDb as countingDbOf } from './support/statements.js';
import { waitFor } from './support/wait.js';

/**
 * The sold-out fast path decides a whole batch without locks once the committed state has no
 * AVAILABLE seat and no lapsed hold. These tests pin down that it never answers too early.
 */

const ctx = await openTestContext();

const settings: DecideSettings = { holdSeconds: 600, maxSeatsPerCustomer: 10, waitlistOfferSeconds: 900 };

const request = (showId: string, more: Partial<BookingJob> = {}): BookingJob => ({
  id: randomUUID(),
  show_id: showId,
  customer_email: `${randomUUID()}@example.com`,
  seat_count: 1,
  section: null,
  seats: null,
  accepted_at: new Date().toISOString(),
  idempotency_key: null,
  request_id: 'sold-out-test',
  ...more,
});

async function decide(showId: string, jobs: BookingJob[]): Promise<Decision[]> {
  const layout = (await loadLayout(ctx.db, showId))!;
  const decisions = await decideBookings(ctx.db, layout, jobs, settings);
  return jobs.map((job) => decisions.get(job.id)!);
}

const outcome = (decision: Decision) =>
  decision.kind === 'decided' ? `${decision.booking.status}${decision.booking.reason ? `:${decision.booking.reason}` : ''}` : 'CONTENDED';

/** A pool of its own whose connections report the first word of every statement they are sent. */
const countingDb = () => countingDbOf(ctx.databaseUrl, 'sold-out-test');

async function showWithSeats(seats: number): Promise<string> {
  return (await createShow(ctx.db, { name: 'Sold out', startTime: new Date('2030-01-01T20:00:00Z'), layout: generalAdmission(seats) })).id;
}

describe('a sold-out show', () => {
  it('fails a whole batch at once: SOLD_OUT for best available, SEATS_UNAVAILABLE for named seats', async () => {
    const showId = await showWithSeats(3);
    expect((await decide(showId, [request(showId, { seat_count: 3 })])).map(outcome)).toEqual(['HELD']);
    const batch = [request(showId), request(showId, { seats: ['2'] }), request(showId, { seat_count: 2 })];
    expect((await decide(showId, batch)).map(outcome)).toEqual(['FAILED:SOLD_OUT', 'FAILED:SEATS_UNAVAILABLE', 'FAILED:SOLD_OUT']);
    const rows = await ctx.pool.query(`SELECT count(*)::int AS n FROM bookings WHERE show_id = $1 AND status = 'FAILED'`, [showId]);
    expect(rows.rows[0].n).toBe(3);
  });

  it('keeps the same precedence as the locking path: a customer over the cap is LIMIT_EXCEEDED', async () => {
    const showId = await showWithSeats(10);
    const greedy = 'greedy@example.com';
    expect((await decide(showId, [request(showId, { seat_count: 9, customer_email: greedy })])).map(outcome)).toEqual(['HELD']);
    expect((await decide(showId, [request(showId)])).map(outcome)).toEqual(['HELD']);
    const batch = [request(showId, { seat_count: 2, customer_email: greedy }), request(showId, { customer_email: greedy }), request(showId)];
    expect((await decide(showId, batch)).map(outcome)).toEqual(['FAILED:LIMIT_EXCEEDED', 'FAILED:SOLD_OUT', 'FAILED:SOLD_OUT']);
  });

  it("counts a customer's live holds toward the cap, and not a hold that has lapsed", async () => {
    const showId = await showWithSeats(20);
    const [lapsing, live] = ['lapsing@example.com', 'live@example.com'];
    const [first] = await decide(showId, [request(showId, { seat_count: 9, customer_email: lapsing }), request(showId, { seat_count: 9, customer_email: live })]);
    const lapsedId = first!.kind === 'decided' ? first!.booking.id : '';
    await ctx.pool.query(`UPDATE bookings SET hold_expires_at = now() - interval '1 second' WHERE id = $1`, [lapsedId]);
    await ctx.pool.query(`UPDATE seats SET hold_expires_at = now() - interval '1 second' WHERE booking_id = $1`, [lapsedId]);
    const batch = [request(showId, { seat_count: 2, customer_email: lapsing }), request(showId, { seat_count: 2, customer_email: live })];
    expect((await decide(showId, batch)).map(outcome)).toEqual(['HELD', 'FAILED:LIMIT_EXCEEDED']);
  });

  it('is not sold out while a hold has lapsed unswept: the next request gets that seat', async () => {
    const showId = await showWithSeats(2);
    const [first] = await decide(showId, [request(showId, { seat_count: 2 })]);
    const bookingId = first!.kind === 'decided' ? first!.booking.id : '';
    await ctx.pool.query(`UPDATE bookings SET hold_expires_at = now() - interval '1 second' WHERE id = $1`, [bookingId]);
    await ctx.pool.query(`UPDATE seats SET hold_expires_at = now() - interval '1 second' WHERE booking_id = $1`, [bookingId]);
    const [next] = await decide(showId, [request(showId)]);
    expect(outcome(next!)).toBe('HELD');
  });

  it('is not sold out while the last seats are only locked by another transaction', async () => {
    const showId = await showWithSeats(2);
    await decide(showId, [request(showId)]);
    const blocker = new pg.Client({ connectionString: ctx.databaseUrl });
    await blocker.connect();
    try {
      await blocker.query('BEGIN');
      await blocker.query(`SELECT id FROM seats WHERE show_id = $1 AND status = 'AVAILABLE' FOR UPDATE`, [showId]);
      expect((await decide(showId, [request(showId)])).map(outcome)).toEqual(['CONTENDED']);
      await blocker.query('ROLLBACK');
      expect((await decide(showId, [request(showId), request(showId)])).map(outcome)).toEqual(['HELD', 'FAILED:SOLD_OUT']);
    } finally {
      await blocker.query('ROLLBACK').catch(() => {});
      await blocker.end();
    }
  });

  it('is decided by one statement on its own when no webhook listens; inside a transaction that writes the events when one does', async () => {
    const showId = await showWithSeats(1);
    await decide(showId, [request(showId)]);
    const { counted, sent } = countingDb();
    const layout = (await loadLayout(ctx.db, showId))!;
    try {
      const batch = [request(showId), request(showId, { seats: ['1'] })];
      const decided = await decideBookings(counted.db, layout, batch, settings);
      expect(batch.map((job) => outcome(decided.get(job.id)!))).toEqual(['FAILED:SOLD_OUT', 'FAILED:SEATS_UNAVAILABLE']);
      expect(sent).toEqual(['WITH']);

      const [hook] = await ctx.db.insert(webhooks).values({ url: 'http://127.0.0.1:9/hook', events: ['booking.failed'], secret: 'whsec_dGVzdA==' }).returning();
      try {
        sent.length = 0;
        const next = [request(showId), request(showId)];
        const again = await decideBookings(counted.db, layout, next, settings);
        expect(next.map((job) => outcome(again.get(job.id)!))).toEqual(['FAILED:SOLD_OUT', 'FAILED:SOLD_OUT']);
        expect(sent.map((word) => word.toLowerCase())).toEqual(['with', 'begin', 'with', 'select', 'commit']);
        const events = await ctx.pool.query(`SELECT type, booking_id FROM webhook_events WHERE booking_id = ANY($1::uuid[]) ORDER BY id`, [next.map((job) => job.id)]);
        expect(events.rows).toEqual(next.map((job) => ({ type: 'booking.failed', booking_id: job.id })));
      } finally {
        await ctx.pool.query('DELETE FROM webhooks WHERE id = $1', [hook!.id]);
      }
    } finally {
      await counted.pool.end();
    }
  });

  it('a request another worker decides while the batch is being written keeps that decision; the rest of the batch is written', async () => {
    const showId = await showWithSeats(1);
    await decide(showId, [request(showId)]);
    const [raced, other] = [request(showId), request(showId)];
    const blocker = new pg.Client({ connectionString: ctx.databaseUrl });
    await blocker.connect();
    try {
      // Another worker's transaction has written `raced` and not committed yet: the batch's insert
      // waits for it, after the statement's snapshot saw no booking for it.
      await blocker.query('BEGIN');
      await blocker.query(
        `INSERT INTO bookings (id, show_id, customer_email, seat_count, status, failure_reason, accepted_at, decided_at, updated_at)
         VALUES ($1, $2, $3, 1, 'FAILED', 'SOLD_OUT', now(), now(), now())`,
        [raced.id, showId, raced.customer_email],
      );
      const deciding = decide(showId, [raced, other]);
      await waitFor(async () => {
        // (Its query column can still show the connection's previous statement: the wait is what counts.)
        const { rows } = await blocker.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM pg_stat_activity
           WHERE datname = current_database() AND wait_event_type = 'Lock' AND wait_event = 'transactionid'`,
        );
        return rows[0]!.n > 0 ? true : undefined;
      }, 'the batch to wait on the other worker\'s uncommitted booking');
      await blocker.query('COMMIT');
      const [first, second] = await deciding;
      expect(first).toMatchObject({ kind: 'decided', duplicate: true, booking: { id: raced.id, status: 'FAILED' } });
      expect(second).toMatchObject({ kind: 'decided', duplicate: false, booking: { id: other.id, status: 'FAILED', reason: 'SOLD_OUT' } });
    } finally {
      await blocker.query('ROLLBACK').catch(() => {});
      await blocker.end();
    }
    const rows = await ctx.pool.query(`SELECT count(*)::int AS n FROM bookings WHERE id = ANY($1::uuid[])`, [[raced.id, other.id]]);
    expect(rows.rows[0].n).toBe(2);
  });

  describe('a batch for a show expected to have seats (no first look)', () => {
    it('runs only its claim transaction, one statement fewer, and gives the same seats', async () => {
      const showId = await showWithSeats(10);
      const layout = (await loadLayout(ctx.db, showId))!;
      const { counted, sent } = countingDb();
      try {
        const looked = [request(showId), request(showId)];
        await decideBookings(counted.db, layout, looked, settings);
        const withLook = sent.splice(0);
        const skipped = [request(showId), request(showId)];
        const decided = await decideBookings(counted.db, layout, skipped, settings, { seatsLikely: true });
        expect(skipped.map((job) => outcome(decided.get(job.id)!))).toEqual(['HELD', 'HELD']);
        expect(withLook[1]).toBe('BEGIN');
        expect(sent[0]).toBe('BEGIN');
        expect(sent).toEqual(withLook.slice(1));
        expect(sent.at(-1)).toBe('COMMIT');
      } finally {
        await counted.pool.end();
      }
      const seats = await ctx.pool.query(`SELECT count(*)::int AS n FROM seats WHERE show_id = $1 AND status = 'HELD'`, [showId]);
      expect(seats.rows[0].n).toBe(4);
    });

    it('finds its earlier decisions inside the claim: a redelivered request keeps its booking, untouched', async () => {
      const showId = await showWithSeats(2);
      const layout = (await loadLayout(ctx.db, showId))!;
      const [first] = await decide(showId, [request(showId)]);
      expect(first).toMatchObject({ kind: 'decided', booking: { status: 'HELD' } });
      const held = first!.kind === 'decided' ? first!.booking : null;
      const redelivered = { ...request(showId), id: held!.id };
      const batch = [redelivered, request(showId), request(showId)];
      const decided = await decideBookings(ctx.db, layout, batch, settings, { seatsLikely: true });
      expect(decided.get(redelivered.id)).toEqual({ kind: 'decided', duplicate: true, booking: held });
      expect(batch.slice(1).map((job) => outcome(decided.get(job.id)!))).toEqual(['HELD', 'FAILED:SOLD_OUT']);
      const rows = await ctx.pool.query(`SELECT count(*)::int AS n FROM bookings WHERE show_id = $1`, [showId]);
      expect(rows.rows[0].n).toBe(3);
    });

    it('on a show that is sold out after all, answers SOLD_OUT from the locking path', async () => {
      const showId = await showWithSeats(1);
      await decide(showId, [request(showId)]);
      const layout = (await loadLayout(ctx.db, showId))!;
      const batch = [request(showId), request(showId, { seats: ['1'] })];
      const decided = await decideBookings(ctx.db, layout, batch, settings, { seatsLikely: true });
      expect(batch.map((job) => outcome(decided.get(job.id)!))).toEqual(['FAILED:SOLD_OUT', 'FAILED:SEATS_UNAVAILABLE']);
    });
  });

  describe("in the worker's group commit", () => {
    const BATCH = 5;
    /** The worker's batch handler with WORKER_BATCH_SIZE 5, reporting each batch it decides and each claim transaction. */
    function processor(limits: Partial<DecideSettings> = {}) {
      const batches: number[] = [];
      let transactions = 0;
      const { decideRequest } = createBookingProcessor({
        db: ctx.db,
        layouts: new LayoutCache(ctx.db),
        settings: { ...settings, ...limits },
        batchSize: BATCH,
        logger: createLogger(ctx.config, 'test'),
        observer: { batch: (size) => batches.push(size), transaction: () => transactions++ },
      });
      return { decide: (jobs: BookingJob[]) => Promise.all(jobs.map((job) => decideRequest(job, 1))), batches, transactions: () => transactions };
    }

    it('a backlog on a show found sold out goes in batches larger than WORKER_BATCH_SIZE, one statement each', async () => {
      const showId = await showWithSeats(2);
      const { decide, batches, transactions } = processor();
      // Two seats, then a backlog of 40 queued in one turn behind the batch running.
      const first = await decide([request(showId), request(showId), request(showId)]);
      expect(first.map(({ result }) => result.status).sort()).toEqual(['FAILED', 'HELD', 'HELD']);
      batches.length = 0;
      const before = transactions();
      const backlog = Array.from({ length: 40 }, () => request(showId));
      const results = await decide(backlog);
      expect(results.every(({ result }) => result.status === 'FAILED' && result.reason === 'SOLD_OUT')).toBe(true);
      // The first request starts a batch alone; the 39 behind it go together, not in eight batches of five.
      expect(batches).toEqual([1, 39]);
      expect(transactions() - before).toBe(2);
      expect(SOLD_OUT_BATCH_SIZE).toBeGreaterThan(39);
    });

    it('should seats come free, that larger batch is still claimed WORKER_BATCH_SIZE at a time, in line order', async () => {
      const showId = await showWithSeats(30);
      // A batch that gives no seat (its one request is over the cap) makes the show look sold
      // out, while 21 requests queue behind it.
      const { decide, batches, transactions } = processor({ maxSeatsPerCustomer: 2 });
      const line = Array.from({ length: 21 }, () => request(showId));
      const [refused, results] = await Promise.all([decide([request(showId, { seat_count: 3 })]), decide(line)]);
      expect(refused.map(({ result }) => result.reason)).toEqual(['LIMIT_EXCEEDED']);
      expect(results.map(({ result }) => result.status)).toEqual(line.map(() => 'HELD'));
      expect(batches).toEqual([1, 21]);
      // The refused request's claim, then the 21 in claims of five, five, five, five and one.
      expect(transactions()).toBe(1 + 5);
      // Line order: general admission seats are handed out in seat order, one claim after another.
      const seats = results.map(({ result }) => Number(result.seats[0]));
      expect(seats).toEqual([...seats].sort((a, b) => a - b));
    });
  });
});
