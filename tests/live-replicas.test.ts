import { afterAll, beforeAll, expect, it } from 'vitest';
import { createTestContext, TEST_ADMIN_TOKEN, type TestContext } from './support/context.js';
import { ProcessRegistry, serviceEnv, type ServiceProcess } from './support/processes.js';
import { SseStream } from './support/sse.js';

/**
 * The fan-out across API replicas, as operators run them (separate processes): a stream on
 * replica A sees a decision the worker made and a confirm replica B made, while the booking
 * was booked and polled on B. Only Redis connects them.
 */

let ctx: TestContext;
let registry: ProcessRegistry;

beforeAll(async () => {
  ctx = await createTestContext();
  registry = new ProcessRegistry(serviceEnv(ctx.config, { LOG_LEVEL: 'info', DB_POOL_SIZE: '2' }));
});
afterAll(async () => {
  await registry?.stopAll();
  await ctx?.cleanup();
});

const json = { 'content-type': 'application/json' };

it("a stream on replica A follows a booking made, polled and confirmed on replica B", async () => {
  const [a, b] = (await Promise.all([registry.startApi(), registry.startApi()])) as [ServiceProcess, ServiceProcess];
  const created = await fetch(`${b.url}/admin/shows`, {
    method: 'POST',
    headers: { ...json, authorization: `Bearer ${TEST_ADMIN_TOKEN}` },
    body: JSON.stringify({ name: 'Fan-out', start_time: '2030-01-01T20:00:00Z', total_seats: 4 }),
  });
  expect(created.status).toBe(201);
  const show = (await created.json()) as { id: string };
  const accepted = await fetch(`${b.url}/booking`, {
    method: 'POST',
    headers: json,
    body: JSON.stringify({ show_id: show.id, customer_email: 'ada@example.com', seat_count: 2 }),
  });
  expect(accepted.status).toBe(202);
  const { id } = (await accepted.json()) as { id: string };

  // No worker yet: the stream on A starts on QUEUED, and B's poll waits.
  const stream = await SseStream.open(`${a.url}/booking/${id}/events`);
  const seatStream = await SseStream.open(`${a.url}/shows/${show.id}/events`);
  await stream.next((event) => event.event === 'status' && event.data!.includes('"QUEUED"'));
  await seatStream.next((event) => event.event === 'availability');
  const poll = fetch(`${b.url}/booking/${id}/status`, { headers: { prefer: 'wait=30' } });

  await registry.startWorker();
  const held = await stream.next((event) => event.data?.includes('"HELD"') ?? false);
  const answered = await poll;
  expect(answered.headers.get('preference-applied')).toBe('wait=30');
  expect(await answered.text()).toBe(held.data);
  const seats = await seatStream.next((event) => event.event === 'seats');
  expect(JSON.parse(seats.data!).seats).toEqual([
    { label: '1', status: 'HELD' },
    { label: '2', status: 'HELD' },
  ]);

  const confirmed = await fetch(`${b.url}/booking/${id}/confirm`, { method: 'POST', headers: json, body: JSON.stringify({ payment: 'success' }) });
  expect(confirmed.status).toBe(200);
  const final = await stream.next((event) => event.data?.includes('"CONFIRMED"') ?? false);
  await stream.ended;
  expect(final.data).toBe(await (await fetch(`${b.url}/booking/${id}/status`)).text());
  // While it waits, a queued booking's view can change (its estimated wait), and every change
  // is an event: a slow worker start can give two QUEUED events. The statuses, in order:
  const statuses = stream.statuses().map((status) => status.status);
  expect(statuses.filter((status, at) => at === 0 || statuses[at - 1] !== status)).toEqual(['QUEUED', 'HELD', 'CONFIRMED']);
  seatStream.close();
}, 120_000);
