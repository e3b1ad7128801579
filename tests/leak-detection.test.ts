import { Worker } from 'bullmq';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { QUEUES } from '../shared/queue/catalog.js';
import { createWorkerConnection, redisTarget, waitForReady } from '../shared/redis.js';
import { openTestContext } from './support/context.js';

/**
 * The teardown every test file runs (TestContext.cleanup) fails when the file leaked a pool
 * client, a Postgres connection or a Redis connection of the services; each kind is leaked on
 * purpose here, then closed, and cleanup called again.
 */

const ctx = await openTestContext();

describe('cleanup fails on a leak', () => {
  it('a client of the context pool still checked out', async () => {
    const client = await ctx.pool.connect();
    await expect(ctx.cleanup()).rejects.toThrow(/1 client\(s\) of the test context's pool still checked out/);
    client.release();
  });

  it("another connection to the file's database still open", async () => {
    const client = new pg.Client({ connectionString: ctx.databaseUrl, application_name: 'leaked-on-purpose' });
    await client.connect();
    await expect(ctx.cleanup()).rejects.toThrow(/connection\(s\) to database ticket_rush_t_\w+ still open after the test: pid \d+ "leaked-on-purpose"/);
    await client.end();
  });

  it('a Redis connection the services open (named for the queue prefix), and those BullMQ opens for a worker', async () => {
    const connection = createWorkerConnection(redisTarget(ctx.config));
    await waitForReady(connection, 10_000);
    await expect(ctx.cleanup()).rejects.toThrow(new RegExp(`Redis connection\\(s\\) named for queue prefix ${ctx.config.QUEUE_PREFIX} still open after the test: id \\d+ "${ctx.config.QUEUE_PREFIX}:worker"`));

    // A BullMQ worker on that connection adds its blocking connection, which BullMQ names.
    const worker = new Worker(QUEUES.maintenance, async () => {}, { connection, prefix: ctx.config.QUEUE_PREFIX });
    await worker.waitUntilReady();
    const blocking = `"${ctx.config.QUEUE_PREFIX}:${Buffer.from(QUEUES.maintenance).toString('base64')}"`;
    await expect(ctx.cleanup()).rejects.toThrow(new RegExp(`2 Redis connection.*(${blocking}.*:worker"|:worker".*${blocking})`));
    await worker.close();
    connection.disconnect();
  });

  it('and passes once everything is closed (afterAll runs it for real)', async () => {
    const api = await ctx.startApi();
    await ctx.startWorker();
    expect((await api.app.inject({ method: 'GET', url: '/health' })).statusCode).toBe(200);
  });
});
