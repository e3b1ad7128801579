import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../shared/config.js';
import { QUEUES, type BookingBatch } from '../shared/queue/catalog.js';
import { waitForReady } from '../shared/redis.js';
import { createTestContext, type TestContext } from './support/context.js';
import { call, createShow, waitForDecision } from './support/http.js';
import { freePort, waitUntil } from './support/processes.js';

/**
 * The pipeline on a real Redis Cluster: three masters started by this file, the services
 * connected through REDIS_CLUSTER_NODES with a hash-tagged QUEUE_PREFIX, a booking taken from
 * the API through a worker to a hold and a confirmation.
 */

let ctx: TestContext;
const nodes: Array<{ port: number; child: ChildProcess }> = [];
const dir = mkdtempSync(join(tmpdir(), 'ticket-rush-cluster-'));
let seeds = '';

async function startNode(): Promise<number> {
  const port = await freePort();
  // The bus port defaults to port + 10000, which may be taken or past 65535: pick one as well.
  let busPort = await freePort();
  while (busPort === port) busPort = await freePort();
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--cluster-port', String(busPort), '--bind', '127.0.0.1', '--cluster-enabled', 'yes', '--cluster-config-file', join(dir, `nodes-${port}.conf`),
      '--dir', dir, '--save', '', '--appendonly', 'no', '--maxmemory-policy', 'noeviction', '--logfile', ''],
    { stdio: 'ignore' },
  );
  nodes.push({ port, child });
  return port;
}

beforeAll(async () => {
  const ports = [await startNode(), await startNode(), await startNode()];
  seeds = ports.map((port) => `127.0.0.1:${port}`).join(',');
  await waitUntil('cluster nodes to answer', () => ports.every((port) => spawnSync('redis-cli', ['-p', String(port), 'ping']).stdout?.toString().trim() === 'PONG'), 10_000);
  const created = spawnSync('redis-cli', ['--cluster', 'create', ...ports.map((port) => `127.0.0.1:${port}`), '--cluster-replicas', '0', '--cluster-yes']);
  expect(created.status, created.stdout.toString() + created.stderr.toString()).toBe(0);
  await waitUntil(
    'the cluster to be ok on every node',
    () => ports.every((port) => /cluster_state:ok/.test(spawnSync('redis-cli', ['-p', String(port), 'cluster', 'info']).stdout.toString())),
    20_000,
  );
  ctx = await createTestContext();
});

afterAll(async () => {
  await ctx?.cleanup();
  for (const node of nodes) node.child.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

describe('Redis Cluster', () => {
  it('refuses a cluster configuration whose queue prefix has no hash tag', () => {
    expect(() => loadConfig({ REDIS_CLUSTER_NODES: '127.0.0.1:7000', QUEUE_PREFIX: 'ticket-rush' })).toThrow(ConfigError);
    expect(() => loadConfig({ REDIS_CLUSTER_NODES: '127.0.0.1:7000', QUEUE_PREFIX: 'ticket-rush' })).toThrow(/QUEUE_PREFIX: .*hash tag/);
    expect(() => loadConfig({ REDIS_CLUSTER_NODES: 'not a node list' })).toThrow(/REDIS_CLUSTER_NODES/);
  });

  it('takes a booking from the API through a worker to a confirmed seat', async () => {
    const prefix = `{tr-${Date.now().toString(36)}}`;
    const env = { REDIS_CLUSTER_NODES: seeds, QUEUE_PREFIX: prefix };
    const api = await ctx.startApi(env);
    await ctx.startWorker(env);
    const show = await createShow(api.app, { total_seats: 3 });
    const accepted = await call(api.app, 'POST', '/booking', {
      body: { show_id: show.id, customer_email: 'cluster@example.com', seat_count: 2 },
      headers: { 'idempotency-key': 'cluster-1' },
    });
    expect(accepted.status).toBe(202);
    expect(await waitForDecision(api.app, accepted.body.id)).toMatchObject({ status: 'HELD', seats: ['1', '2'] });
    const confirmed = await call(api.app, 'POST', `/booking/${accepted.body.id}/confirm`, { body: { payment: 'success' } });
    expect(confirmed.body).toMatchObject({ status: 'CONFIRMED' });
    expect((await call(api.app, 'GET', '/ready')).body).toMatchObject({ status: 'ready', checks: { redis: 'up' } });
    // The API's next turn sends its job in the admission's round trip (the first loaded the script).
    const second = await call(api.app, 'POST', '/booking', { body: { show_id: show.id, customer_email: 'cluster2@example.com', seat_count: 1 } });
    expect(second.status).toBe(202);
    expect(await waitForDecision(api.app, second.body.id)).toMatchObject({ status: 'HELD', seats: ['3'] });

    // Every key the pipeline wrote lives under the tagged prefix, so in one slot of the cluster.
    const cluster = new Cluster(seeds.split(',').map((seed) => ({ host: '127.0.0.1', port: Number(seed.split(':')[1]) })));
    try {
      await waitForReady(cluster);
      const keys: string[] = [];
      for (const node of cluster.nodes('master')) keys.push(...(await node.keys('*')));
      expect(keys.length).toBeGreaterThan(0);
      expect(keys.filter((key) => !key.startsWith(prefix))).toEqual([]);
      const queue = new Queue(QUEUES.bookings, { connection: cluster, prefix });
      const jobs = await queue.getJobs(['completed']);
      await queue.close();
      const carrier = jobs.find((job) => (job.data as BookingBatch).requests.some((request) => request.id === second.body.id));
      expect((carrier?.data as BookingBatch | undefined)?.sentWithAdmission).toBe(true);
    } finally {
      cluster.disconnect();
    }
  });
});
