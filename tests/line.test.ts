import { describe, expect, it } from 'vitest';
import type { RunningWorker } from '../services/worker/worker.js';
import { drawKey, drawOrder, lineOrder, seedCommitment, verifyDraw } from '../shared/booking/draw.js';
import { JOBS, type BookingJob } from '../shared/queue/catalog.js';
import { releasedJobId } from '../shared/queue/show-line.js';
import { openIntakeTest } from './support/context.js';
import { call, createShow, waitForDecision } from './support/http.js';
import { waitFor, waitUntil } from './support/wait.js';

/**
 * The line (issue 13): the waiting room and its draw, pause and resume, workers parking a paused
 * show's batches, leaving the line. Real Postgres and Redis; the keeper runs in the workers.
 */

const { ctx, api, queue, index } = await openIntakeTest({ HOLD_SECONDS: '300' });
const workers: RunningWorker[] = [];

async function startWorker(): Promise<RunningWorker> {
  const worker = await ctx.startWorker();
  workers.push(worker);
  return worker;
}

async function stopWorkers(): Promise<void> {
  while (workers.length > 0) await workers.pop()!.close();
}

const book = (showId: string, email: string, headers: Record<string, string> = {}) =>
  call(api.app, 'POST', '/booking', { body: { show_id: showId, customer_email: email, seat_count: 1 }, headers });
const poll = async (id: string) => (await call(api.app, 'GET', `/booking/${id}/status`)).body;

/** `count` requests of a batch job for `showId`, the n-th for n seats, as the API would have accepted them. */
const batchRequests = (showId: string, emailPrefix: string, count: number): BookingJob[] =>
  Array.from({ length: count }, (_, at) => ({
    id: crypto.randomUUID(),
    request_id: `req-${at + 1}`,
    show_id: showId,
    customer_email: `${emailPrefix}${at + 1}@example.com`,
    seat_count: at + 1,
    section: null,
    seats: null,
    waitlist: false,
    idempotency_key: null,
    accepted_at: new Date().toISOString(),
  }));

describe('the draw', () => {
  it('orders ids by ascending HMAC-SHA256(seed, id) and verifies from the revealed seed', () => {
    const seed = Buffer.alloc(32, 7);
    const ids = ['6f1c1a56-57c1-4a55-9f57-3e2a3e2f7a10', '0a4e6f61-2f5e-4c2e-8d0a-5d9f3c4b2a11', 'c3d2b1a0-9f8e-4d7c-8b6a-5f4e3d2c1b12'];
    const order = drawOrder(seed, ids);
    expect(drawOrder(seed, [...ids].reverse())).toEqual(order); // arrival order does not matter
    expect(order.map((entry) => entry.key)).toEqual([...order.map((entry) => entry.key)].sort());
    expect(order[0]!.key).toMatch(/^[0-9a-f]{64}$/);
    expect(drawKey(seed, ids[0]!.toUpperCase())).toBe(drawKey(seed, ids[0]!)); // the canonical lowercase UUID
    const proof = { seed: seed.toString('hex'), seed_sha256: seedCommitment(seed), keys: order.map((entry) => entry.key) };
    expect(verifyDraw(proof, order[1]!.id)).toEqual({ valid: true, place: 1 });
    expect(verifyDraw({ ...proof, seed_sha256: seedCommitment(Buffer.alloc(32, 8)) }).valid).toBe(false);
    expect(verifyDraw({ ...proof, keys: [...proof.keys].reverse() }).valid).toBe(false);
  });
});

describe('the waiting room', () => {
  it('holds requests undecided until sales_open_at, draws them once, and serves late arrivals behind the whole room', async () => {
    const openAt = Date.now() + 2_500;
    const show = await createShow(api.app, { total_seats: 3, sales_open_at: new Date(openAt).toISOString() });
    const view = (await call(api.app, 'GET', `/shows/${show.id}`)).body;
    expect(view.sales_state).toBe('WAITING_ROOM');

    const room: string[] = [];
    for (let i = 0; i < 8; i++) {
      const accepted = await book(show.id, `room${i}@example.com`, i === 0 ? { 'Idempotency-Key': 'room-0' } : {});
      expect(accepted.status).toBe(202);
      expect(accepted.body).toMatchObject({ status: 'QUEUED', phase: 'WAITING_ROOM', position: null });
      room.push(accepted.body.id);
    }
    expect(await poll(room[3]!)).toEqual({
      id: room[3],
      status: 'QUEUED',
      phase: 'WAITING_ROOM',
      sales_open_at: new Date(openAt).toISOString(),
      updated_at: expect.any(String),
    });
    expect((await call(api.app, 'GET', `/booking/${room[3]}`)).body).toMatchObject({ status: 'QUEUED', phase: 'WAITING_ROOM', customer_email: 'r***@example.com' });
    expect((await call(api.app, 'GET', `/shows/${show.id}`)).body.in_line).toBe(8);

    // One entry per customer (case-insensitive), never naming the other id; a replay of the first still gets its 202.
    const second = await book(show.id, 'ROOM1@example.com');
    expect(second.status).toBe(409);
    expect(second.body.error).toMatchObject({ code: 'ALREADY_IN_LINE', details: [{ field: 'customer_email' }] });
    expect(JSON.stringify(second.body)).not.toContain(room[1]);
    const replay = await book(show.id, 'room0@example.com', { 'Idempotency-Key': 'room-0' });
    expect(replay).toMatchObject({ status: 202, body: { id: room[0], phase: 'WAITING_ROOM' } });

    const early = await call(api.app, 'GET', `/shows/${show.id}/draw`);
    expect(early.status).toBe(409);
    expect(early.body.error.code).toBe('NOT_DRAWN_YET');

    // No worker yet: past the opening, arrivals line up behind the undrawn room.
    await waitUntil('the sale to open', () => Date.now() >= openAt + 50, 10_000);
    const late: string[] = [];
    for (let i = 0; i < 2; i++) {
      const accepted = await book(show.id, `late${i}@example.com`);
      expect(accepted.body).toMatchObject({ phase: 'IN_LINE', position: 9 + i });
      late.push(accepted.body.id);
    }
    expect(await poll(late[1]!)).toMatchObject({ status: 'QUEUED', phase: 'IN_LINE', position: 10 });

    await startWorker();
    await startWorker(); // two keepers race for the draw: it happens once
    const decided = await Promise.all([...room, ...late].map((id) => waitForDecision(api.app, id)));

    const draw = await call(api.app, 'GET', `/shows/${show.id}/draw`);
    expect(draw.status).toBe(200);
    expect(draw.body.seed_sha256).toBe(view.seed_sha256);
    expect(draw.body.entries).toBe(8);
    const seed = Buffer.from(draw.body.seed, 'hex');
    // Recomputed from the revealed seed: the commitment holds and the keys are the room's, in HMAC order.
    expect(verifyDraw(draw.body).valid).toBe(true);
    const order = drawOrder(seed, room);
    expect(draw.body.keys).toEqual(order.map((entry) => entry.key));
    for (const id of room) expect(verifyDraw(draw.body, id).place).toBe(order.findIndex((entry) => entry.id === id));

    // Decisions follow the line: the first three of the draw hold the three seats, everyone behind is refused.
    const statusOf = new Map([...room, ...late].map((id, at) => [id, decided[at]!.status as string]));
    expect(order.map((entry) => statusOf.get(entry.id))).toEqual(['HELD', 'HELD', 'HELD', 'FAILED', 'FAILED', 'FAILED', 'FAILED', 'FAILED']);
    expect(late.map((id) => statusOf.get(id))).toEqual(['FAILED', 'FAILED']);

    // The draw is kept as it was: a second look gives the same proof.
    expect((await call(api.app, 'GET', `/shows/${show.id}/draw`)).body).toEqual(draw.body);
    await stopWorkers();
  });

  it('a PATCHed opening moves the draw; the line can be recovered afterwards from Postgres alone', async () => {
    const show = await createShow(api.app, { total_seats: 2, sales_open_at: new Date(Date.now() + 3_600_000).toISOString() });
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) ids.push((await book(show.id, `moved${i}@example.com`)).body.id);
    await startWorker();
    const openAt = new Date(Date.now() + 1_500).toISOString();
    expect((await call(api.app, 'PATCH', `/admin/shows/${show.id}`, { body: { sales_open_at: openAt }, admin: true })).status).toBe(200);
    const decided = await Promise.all(ids.map((id) => waitForDecision(api.app, id)));
    const draw = (await call(api.app, 'GET', `/shows/${show.id}/draw`)).body;
    expect(Date.parse(draw.drawn_at)).toBeGreaterThanOrEqual(Date.parse(openAt));
    const rows = await ctx.pool.query<{ id: string; accepted_at: Date }>('SELECT id, accepted_at FROM bookings WHERE show_id = $1', [show.id]);
    const line = lineOrder(Buffer.from(draw.seed, 'hex'), new Date(openAt), rows.rows.map((row) => ({ id: row.id, acceptedAt: row.accepted_at })));
    const statusOf = new Map(ids.map((id, at) => [id, decided[at]!.status]));
    expect(line.map((id) => statusOf.get(id))).toEqual(['HELD', 'HELD', 'FAILED', 'FAILED']);
    await stopWorkers();
  });

  it('a show on sale at once has an empty draw at its opening; unknown shows are 404', async () => {
    const show = await createShow(api.app, { total_seats: 2 });
    const draw = await call(api.app, 'GET', `/shows/${show.id}/draw`);
    expect(draw).toMatchObject({ status: 200, body: { entries: 0, keys: [] } });
    expect(verifyDraw(draw.body).valid).toBe(true);
    expect((await call(api.app, 'GET', `/shows/00000000-0000-4000-8000-000000000000/draw`)).status).toBe(404);
    expect((await call(api.app, 'GET', `/shows/not-a-uuid/draw`)).status).toBe(400);
  });
});

describe('pause and resume', () => {
  it('accepts while paused without deciding, lets a queued request leave, and resumes in line order across two workers', async () => {
    const show = await createShow(api.app, { total_seats: 3 });
    const control = await createShow(api.app, { total_seats: 1 });
    await startWorker();
    await startWorker();

    const paused = await call(api.app, 'POST', `/admin/shows/${show.id}/pause`, { admin: true });
    expect(paused.status).toBe(200);
    expect(paused.body.sales_state).toBe('PAUSED');
    expect((await call(api.app, 'POST', `/admin/shows/${show.id}/pause`, { admin: true })).body.sales_state).toBe('PAUSED'); // idempotent

    const line: string[] = [];
    for (let i = 0; i < 5; i++) {
      const accepted = await book(show.id, `paused${i}@example.com`);
      expect(accepted.body).toMatchObject({ status: 'QUEUED', phase: 'IN_LINE', position: i + 1 });
      line.push(accepted.body.id);
    }
    // The workers are deciding (another show's request is), yet nothing of the paused show is.
    const other = (await book(control.id, 'other@example.com')).body.id;
    expect(await waitForDecision(api.app, other)).toMatchObject({ status: 'HELD' });
    for (const [at, id] of line.entries()) expect(await poll(id)).toMatchObject({ status: 'QUEUED', phase: 'IN_LINE', position: at + 1, paused: true });

    // Leaving the line: CANCELLED at once, no seats, and those behind move up.
    const left = await call(api.app, 'POST', `/booking/${line[1]}/cancel`);
    expect(left.status).toBe(200);
    expect(left.body).toMatchObject({ id: line[1], status: 'CANCELLED', seats: [], total_cents: 0 });
    expect(await poll(line[2]!)).toMatchObject({ phase: 'IN_LINE', position: 2, seats_ahead: 1 });
    expect(await poll(line[4]!)).toMatchObject({ phase: 'IN_LINE', position: 4, seats_ahead: 3 });
    expect((await call(api.app, 'POST', `/booking/${line[1]}/cancel`)).body.error.code).toBe('BOOKING_CANCELLED');

    const resumed = await call(api.app, 'POST', `/admin/shows/${show.id}/resume`, { admin: true });
    expect(resumed.status).toBe(200);
    expect(resumed.body.sales_state).toBe('ON_SALE');
    const decided = await Promise.all(line.filter((_, at) => at !== 1).map((id) => waitForDecision(api.app, id)));
    expect(decided.map((booking) => booking.status)).toEqual(['HELD', 'HELD', 'HELD', 'FAILED']);
    expect(await poll(line[1]!)).toMatchObject({ status: 'CANCELLED', seats: [] });
    await stopWorkers();
  });

  it('a turn sent with its admission to a show paused meanwhile: its job carries the request, the line keeps it, the worker leaves it alone', async () => {
    const show = await createShow(api.app, { total_seats: 2 });
    const control = await createShow(api.app, { total_seats: 1 });
    // The API has admitted a turn (of another show), and not seen this show's line held: its next
    // turn of this show goes out with the job in the admission's round trip.
    const flowing = (await book(control.id, 'flowing@example.com')).body.id;
    await call(api.app, 'POST', `/admin/shows/${show.id}/pause`, { admin: true });
    const held = await book(show.id, 'held@example.com');
    expect(held.body).toMatchObject({ status: 'QUEUED', phase: 'IN_LINE', position: 1 });
    const carriers = (await queue.getJobs(['waiting'])).filter((job) => (job.data.requests as BookingJob[]).some((request) => request.id === held.body.id));
    expect(carriers.map((job) => job.data.sentWithAdmission)).toEqual([true]);
    expect(await ctx.redis.get(index.keyOf(held.body.id))).toBe(`line:${show.id}`);

    const carrier = carriers[0]!;
    await startWorker();
    expect(await waitForDecision(api.app, flowing)).toMatchObject({ status: 'HELD' });
    await waitFor(async () => ((await queue.getJob(carrier.id!))?.finishedOn ? true : undefined), 'the carrying job to finish');
    expect((await queue.getJob(carrier.id!))?.returnvalue).toMatchObject({ decided: 0 });
    expect(await poll(held.body.id)).toMatchObject({ status: 'QUEUED', phase: 'IN_LINE', position: 1, paused: true });
    expect((await ctx.pool.query('SELECT 1 FROM bookings WHERE id = $1', [held.body.id])).rowCount).toBe(0);

    await call(api.app, 'POST', `/admin/shows/${show.id}/resume`, { admin: true });
    expect(await waitForDecision(api.app, held.body.id)).toMatchObject({ status: 'HELD' });
    expect((await ctx.pool.query('SELECT 1 FROM bookings WHERE id = $1', [held.body.id])).rowCount).toBe(1);
    await stopWorkers();
  });

  it('a batch sent with its admission: the worker takes only the requests whose entry names the job (one script)', async () => {
    const show = await createShow(api.app, { total_seats: 5 });
    const jobId = crypto.randomUUID();
    const elsewhere = crypto.randomUUID();
    const requests = batchRequests(show.id, 'screened', 3);
    const flowKey = (id: string) => `${ctx.config.QUEUE_PREFIX}:intake:flow:${id}`;
    // Its own request, one another job took on a second admission, one the admission left out.
    await ctx.redis.set(index.keyOf(requests[0]!.id), `${jobId}:1`);
    await ctx.redis.set(index.keyOf(requests[1]!.id), `${elsewhere}:2`);
    for (const request of requests.slice(0, 2)) await ctx.redis.set(flowKey(request.id), `${show.id}:0:0:${request.seat_count}:*`);
    const gate = index.line.keysOf(show.id).gate;
    const taken = await index.taken();

    expect(await index.startBatch(requests, jobId, true, true)).toEqual(['decide', 'elsewhere', 'elsewhere']);
    expect(await index.taken()).toBe(taken + 1);
    expect(await ctx.redis.hmget(gate, 'taken', 'flow_out', 'flow_seats_out')).toEqual(['1', '1', '1']);
    expect(await ctx.redis.exists(flowKey(requests[0]!.id), flowKey(requests[1]!.id))).toBe(1); // the other job's place stays
    expect(await ctx.redis.get(flowKey(requests[1]!.id))).not.toBeNull();
    // Unscreened (any other job), the same requests are all this job's.
    expect(await index.startBatch(requests, jobId, false)).toEqual(['decide', 'decide', 'decide']);
    await ctx.redis.del(gate, ...requests.flatMap((request) => [index.keyOf(request.id), flowKey(request.id)]));
  });

  it('a worker that takes a batch of a paused show parks it back in line; resume decides it', async () => {
    const show = await createShow(api.app, { total_seats: 2 });
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await book(show.id, `parked${i}@example.com`)).body.id);
    expect(await poll(ids[0]!)).toMatchObject({ phase: 'IN_LINE' }); // in a batch job: no worker runs
    await call(api.app, 'POST', `/admin/shows/${show.id}/pause`, { admin: true });
    await startWorker();
    for (const [at, id] of ids.entries()) {
      await waitFor(async () => ((await poll(id)).paused ? true : undefined), `request ${at} parked in the paused line`, 20_000);
      expect(await poll(id)).toMatchObject({ status: 'QUEUED', phase: 'IN_LINE', position: at + 1, paused: true });
    }
    await call(api.app, 'POST', `/admin/shows/${show.id}/resume`, { admin: true });
    const decided = await Promise.all(ids.map((id) => waitForDecision(api.app, id)));
    expect(decided.map((booking) => booking.status)).toEqual(['HELD', 'HELD', 'FAILED']);
    await stopWorkers();
  });

  it('a released batch in flight taken while paused: parked at its place, out of the in-flight counts, taken once (one script)', async () => {
    const show = await createShow(api.app, { total_seats: 5 });
    const jobId = releasedJobId(show.id, 7);
    const keys = index.line.keysOf(show.id);
    const requests = batchRequests(show.id, 'inflight', 2);
    // What a keeper leaves behind a release: the gate counts the batch in flight, each entry names the job.
    await ctx.redis.hset(keys.gate, { paused: Date.now(), inflight: jobId, inflight_requests: 2, inflight_seats: 3 });
    for (const [at, request] of requests.entries()) await ctx.redis.set(index.keyOf(request.id), `${jobId}:${at + 1}`);
    const taken = await index.taken();

    expect(await index.startBatch(requests, jobId, true)).toEqual(['parked', 'parked']);
    expect(await ctx.redis.zrange(keys.held, '0', '-1', 'WITHSCORES')).toEqual([requests[0]!.id, '-1999999999999999', requests[1]!.id, '-1999999999999998']);
    expect(JSON.parse((await ctx.redis.hget(keys.requests, requests[1]!.id))!)).toEqual(requests[1]);
    expect(await ctx.redis.get(index.keyOf(requests[0]!.id))).toBe(`line:${show.id}`);
    expect(await ctx.redis.hmget(keys.gate, 'inflight_requests', 'inflight_seats', 'taken', 'flow_out')).toEqual(['0', '0', '2', null]);
    expect(await index.taken()).toBe(taken + 2);

    // Started again (a retry): nothing left to park, nothing counted twice.
    expect(await index.startBatch(requests, jobId, false)).toEqual(['decide', 'decide']);
    expect(await index.taken()).toBe(taken + 2);
    expect(await ctx.redis.hget(keys.gate, 'inflight_requests')).toBe('0');
    await ctx.redis.del(keys.gate, keys.held, keys.requests, ...requests.map((request) => index.keyOf(request.id)));
  });

  it('a keeper killed between adding a released batch and recording it: the next one finishes the same release, each request decided once', async () => {
    const show = await createShow(api.app, { total_seats: 5 });
    await call(api.app, 'POST', `/admin/shows/${show.id}/pause`, { admin: true });
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) ids.push((await book(show.id, `crash${i}@example.com`)).body.id);
    await call(api.app, 'POST', `/admin/shows/${show.id}/resume`, { admin: true });
    // What a keeper had done when it died: the job of release 0 is added with the head of the
    // line (the first two), and nothing recorded.
    const head: BookingJob[] = await index.line.head(show.id, 2);
    expect(head.map((request) => request.id)).toEqual(ids.slice(0, 2));
    await queue.add('process-bookings', { requests: head }, { ...JOBS['process-bookings'].options, jobId: releasedJobId(show.id, 0) });
    await startWorker();
    const decided = await Promise.all(ids.map((id) => waitForDecision(api.app, id)));
    expect(decided.map((booking) => booking.status)).toEqual(['HELD', 'HELD', 'HELD', 'HELD']);
    const rows = await ctx.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM bookings WHERE show_id = $1', [show.id]);
    expect(rows.rows[0]!.n).toBe(4);
    expect(await index.line.length(show.id)).toBe(0);
    await stopWorkers();
  });

  it('a request that leaves the waiting room is never drawn nor decided', async () => {
    const show = await createShow(api.app, { total_seats: 5, sales_open_at: new Date(Date.now() + 60_000).toISOString() });
    const id = (await book(show.id, 'leaver@example.com')).body.id;
    const left = await call(api.app, 'POST', `/booking/${id}/cancel`);
    expect(left.body).toMatchObject({ status: 'CANCELLED', seats: [] });
    expect(await poll(id)).toMatchObject({ status: 'CANCELLED' });
    // Its place is free: the same customer may wait again.
    expect((await book(show.id, 'leaver@example.com')).status).toBe(202);
    expect(await index.line.length(show.id)).toBe(1);
  });

  it('pause and resume of a show that does not exist, or a bad id', async () => {
    for (const action of ['pause', 'resume']) {
      const missing = await call(api.app, 'POST', `/admin/shows/00000000-0000-4000-8000-000000000000/${action}`, { admin: true });
      expect(missing.status).toBe(404);
      expect(missing.body.error.code).toBe('NOT_FOUND');
      const bad = await call(api.app, 'POST', `/admin/shows/nope/${action}`, { admin: true });
      expect(bad.status).toBe(400);
      expect(bad.body.error.details[0].field).toBe('id');
      expect((await call(api.app, 'POST', `/admin/shows/00000000-0000-4000-8000-000000000000/${action}`)).status).toBe(401);
    }
  });
});

describe('seats ahead along a line being released', () => {
  it('stays exact through the draw, a release of the head, a leave from the middle and a release past it', async () => {
    // No worker runs: the draw and the releases are done here, one step at a time, as a keeper does.
    const openAt = Date.now() + 1_500;
    const show = await createShow(api.app, { total_seats: 40, sales_open_at: new Date(openAt).toISOString() });
    const seatsOf = new Map<string, number>();
    for (let i = 0; i < 8; i++) {
      const seatCount = (i % 3) + 1;
      const accepted = await call(api.app, 'POST', '/booking', { body: { show_id: show.id, customer_email: `ahead${i}@example.com`, seat_count: seatCount } });
      expect(accepted.body.phase).toBe('WAITING_ROOM');
      seatsOf.set(accepted.body.id, seatCount);
    }
    await waitUntil('the sale to open', () => Date.now() >= openAt, 10_000, 5);
    const late = (await call(api.app, 'POST', '/booking', { body: { show_id: show.id, customer_email: 'ahead-late@example.com', seat_count: 2 } })).body.id as string;
    seatsOf.set(late, 2);

    const seed = (await ctx.pool.query<{ draw_seed: Buffer }>('SELECT draw_seed FROM shows WHERE id = $1', [show.id])).rows[0]!.draw_seed;
    const room = [...seatsOf.keys()].filter((id) => id !== late);
    expect(await index.line.draw(show.id, new Date(), drawOrder(seed, room))).toBe('drawn');
    let line = [...drawOrder(seed, room).map((entry) => entry.id), late];
    // Every place is numbered, so a poll reads its seats ahead in O(1), not summed over the line.
    expect(await ctx.redis.hlen(index.line.keysOf(show.id).cum)).toBe(line.length);

    // Each request still in line: its position and the seats asked ahead of it, the batch in flight included.
    const expectStandings = async (inFlight: string[]) => {
      const flying = inFlight.reduce((sum, id) => sum + seatsOf.get(id)!, 0);
      for (const [at, id] of line.entries()) {
        const ahead = line.slice(0, at).reduce((sum, other) => sum + seatsOf.get(other)!, 0);
        expect(await poll(id), `place ${at}`).toMatchObject({ position: inFlight.length + at + 1, seats_ahead: flying + ahead });
      }
    };
    const release = async (count: number, batch: number) => {
      const head = line.slice(0, count);
      const jobId = releasedJobId(show.id, batch);
      expect(await index.line.released(show.id, jobId, index.acceptedCounterKey, head.map((id) => index.keyOf(id)), head)).toBe(count);
      line = line.slice(count);
      await index.line.releaseDecided(show.id, jobId);
    };
    await expectStandings([]);

    const head = line.slice(0, 2);
    const jobId = releasedJobId(show.id, 0);
    await index.line.released(show.id, jobId, index.acceptedCounterKey, head.map((id) => index.keyOf(id)), head);
    line = line.slice(2);
    await expectStandings(head); // released, not decided yet: still ahead of everyone
    await index.line.releaseDecided(show.id, jobId);
    await expectStandings([]);

    const leaver = line[2]!;
    expect((await call(api.app, 'POST', `/booking/${leaver}/cancel`)).body.status).toBe('CANCELLED');
    line = line.filter((id) => id !== leaver);
    await expectStandings([]);
    await release(3, 1); // passes the leaver's place
    await expectStandings([]);
    await release(line.length - 1, 2);
    await expectStandings([]);
    expect(line).toEqual([late]);
  });
});
