import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { JOBS, type BookingJob } from '../shared/queue/catalog.js';
import { openIntakeTest, TEST_ADMIN_TOKEN } from './support/context.js';
import { call, createShow } from './support/http.js';
import { waitFor } from './support/wait.js';

/**
 * The queue board must not lose accepted bookings: with the worker stopped and requests
 * waiting, every destructive action on the bookings queue is refused through the board's real
 * HTTP API, retrying its failed jobs still works, and the maintenance queue stays operable. A
 * job removed some other way (an operator's script) leaves its requests polling FAILED with a
 * reason, not 404.
 */

const { ctx, api, queue, index } = await openIntakeTest();
const showId = (await createShow(api.app, { total_seats: 50 })).id;

const board = (method: 'PUT' | 'POST' | 'PATCH', path: string, payload: unknown = {}) =>
  api.app.inject({ method, url: `/admin/queues/api${path}`, headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}` }, payload: payload as object });

let customer = 0;
async function book(): Promise<string> {
  const reply = await call(api.app, 'POST', '/booking', { body: { show_id: showId, customer_email: `fan-${customer++}@example.com`, seat_count: 1 } });
  expect(reply.status).toBe(202);
  return reply.body.id as string;
}

const pollStatus = async (id: string) => (await call(api.app, 'GET', `/booking/${id}/status`)).body;

describe('the bookings queue on the board (worker stopped)', () => {
  it('refuses every destructive action, in our error shape, and loses nothing', async () => {
    const ids = [await book(), await book(), await book()];
    const jobId = (await index.jobIdOf(ids[0]!))!;
    const refused: Array<[method: 'PUT' | 'POST' | 'PATCH', path: string, body?: unknown]> = [
      ['PUT', '/queues/bookings/empty'],
      ['PUT', '/queues/bookings/clean/waiting'],
      ['PUT', '/queues/bookings/clean/failed'],
      ['PUT', '/queues/bookings/obliterate', { force: true }],
      ['PUT', `/queues/bookings/${jobId}/clean`],
      ['PATCH', `/queues/bookings/${jobId}/update-data`, { data: { requests: [] } }],
      ['PUT', '/queues/bookings/pause'],
      ['PUT', '/queues/pause'],
      ['PUT', '/queues/bookings/retry/completed'],
      ['POST', '/queues/bookings/add', { name: 'process-bookings', data: {} }],
    ];
    for (const [method, path, body] of refused) {
      const reply = await board(method, path, body);
      expect(reply.statusCode, `${method} ${path}`).toBe(405);
      expect(reply.json(), `${method} ${path}`).toMatchObject({ error: { code: 'QUEUE_READ_ONLY', message: expect.stringMatching(/read-only/) } });
    }
    // Cleaning completed jobs frees memory only: their requests are decided.
    expect((await board('PUT', '/queues/bookings/clean/completed')).statusCode).toBeLessThan(300);
    expect(await queue.isPaused()).toBe(false);
    for (const id of ids) expect(await pollStatus(id)).toMatchObject({ id, status: 'QUEUED' });
    expect(await index.waiting()).toBe(3);
  });

  it('leaves the maintenance queue operable', async () => {
    expect((await board('PUT', '/queues/maintenance/clean/completed')).statusCode).toBeLessThan(300);
    expect((await board('PUT', '/queues/maintenance/pause')).statusCode).toBeLessThan(300);
    expect((await board('PUT', '/queues/maintenance/resume')).statusCode).toBeLessThan(300);
  });

  it('a job removed by a script leaves its requests polling FAILED with a reason, not 404', async () => {
    const id = await book();
    const jobId = (await index.jobIdOf(id))!;
    // What an operator's script (or removeOnFail's expiry) does, outside the board.
    await queue.remove(jobId);
    expect(await queue.getJob(jobId)).toBeUndefined();
    const reply = await call(api.app, 'GET', `/booking/${id}/status`);
    expect(reply.status).toBe(200);
    expect(reply.body).toMatchObject({ id, status: 'FAILED', reason: 'REQUEST_REMOVED', seats: [] });
  });

  it('a removed job\'s request reads the same in full as in its poll: FAILED REQUEST_REMOVED', async () => {
    const id = await book();
    await queue.remove((await index.jobIdOf(id))!);
    const status = await call(api.app, 'GET', `/booking/${id}/status`);
    expect(status.body).toMatchObject({ id, status: 'FAILED', reason: 'REQUEST_REMOVED' });
    const full = await call(api.app, 'GET', `/booking/${id}`);
    expect(full.status).toBe(200);
    expect(full.body).toMatchObject({
      id,
      show_id: showId,
      customer_email: expect.stringMatching(/^f\*\*\*@example\.com$/),
      status: 'FAILED',
      reason: 'REQUEST_REMOVED',
      seat_count: 1,
      seats: [],
      total_cents: 0,
      decided_at: null,
    });
    expect(full.body).not.toHaveProperty('position');
  });

  it('still retries failed bookings jobs, all at once or one by one', async () => {
    // A batch that fails at once (its show does not exist: UnrecoverableError).
    const request: BookingJob = {
      id: randomUUID(),
      show_id: randomUUID(),
      customer_email: 'nobody@example.com',
      seat_count: 1,
      section: null,
      seats: null,
      accepted_at: new Date().toISOString(),
      idempotency_key: null,
      request_id: 'test',
    };
    const jobId = randomUUID();
    await index.register(jobId, [request.id]);
    await queue.add('process-bookings', { requests: [request] }, { ...JOBS['process-bookings'].options, jobId });
    await ctx.startWorker();
    const failedOnce = async (attempts: number) =>
      waitFor(async () => {
        const job = await queue.getJob(jobId);
        return job && (await job.getState()) === 'failed' && job.attemptsStarted >= attempts ? job : undefined;
      }, `the job to fail (${attempts})`);
    await failedOnce(1);
    expect(await pollStatus(request.id)).toMatchObject({ status: 'FAILED', reason: 'PROCESSING_ERROR' });

    expect((await board('PUT', '/queues/bookings/retry/failed')).statusCode).toBe(200);
    await failedOnce(2);
    expect((await board('PUT', `/queues/bookings/${jobId}/retry`)).statusCode).toBe(204);
    await failedOnce(3);
    // A job that is not failed is not retried (here: a completed one).
    const completed = await waitFor(async () => (await queue.getJobs(['completed']))[0], 'a completed job');
    expect((await board('PUT', `/queues/bookings/${completed.id}/retry`)).statusCode).toBe(405);
  });
});
