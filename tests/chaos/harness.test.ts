import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { QUEUES } from '../../shared/queue/catalog.js';
import { ProcessRegistry, RedisServer, waitUntil } from '../support/processes.js';
import { collectEvents, createGaShow, openWorld } from './harness.js';

/**
 * The harness reads and watches the queues through the same Redis URL the services get: a
 * TEST_REDIS_URL naming a database number and a password must not send the audit to database
 * 0 (or fail to authenticate) while the services write where the URL says.
 */

const registry = new ProcessRegistry({});
// Registered before the world's hook, so it runs after it: the services' Redis outlives them.
afterAll(() => registry.stopAll());
const server = await RedisServer.start(registry, { password: 'harness-secret' });
const url = `${server.url}/7`;
const world = await openWorld({ redisUrl: url });

async function keysUnder(client: Redis, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await client.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1_000);
    cursor = next;
    keys.push(...batch);
  } while (cursor !== '0');
  return keys;
}

describe('chaos harness: the whole Redis URL', () => {
  it('keeps the database number and the password for its queues and event listeners', async () => {
    const { ctx } = world;
    const prefix = ctx.config.QUEUE_PREFIX;
    const completed = await collectEvents(QUEUES.bookings, { redisUrl: url, prefix }, 'completed');
    const api = await ctx.startApi({ REDIS_URL: url });
    await ctx.startWorker({ REDIS_URL: url });
    try {
      const show = await createGaShow(ctx.db, 10);
      const response = await api.app.inject({
        method: 'POST',
        url: '/booking',
        payload: { show_id: show.id, customer_email: 'harness@example.test', seat_count: 1 },
      });
      expect(response.statusCode).toBe(202);
      const { id } = response.json<{ id: string }>();

      // The harness's listener sees the worker's decision, and its queue handle finds the job.
      await waitUntil('the booking job completed', () => completed.ids.length > 0, 30_000);
      expect(await world.bookingQueue.getCompletedCount()).toBe(1);
      expect(id).toBeTruthy();

      const db7 = new Redis(url, { maxRetriesPerRequest: 1 });
      const db0 = new Redis(server.url, { maxRetriesPerRequest: 1 });
      try {
        expect((await keysUnder(db7, prefix)).length).toBeGreaterThan(0);
        expect(await keysUnder(db0, prefix)).toEqual([]);
      } finally {
        db7.disconnect();
        db0.disconnect();
      }
    } finally {
      await completed.close();
    }
  });
});
