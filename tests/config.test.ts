import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../shared/config.js';
import { createLogger } from '../shared/logger.js';
import { startApi } from '../services/api/server.js';
import { createTestContext, type TestContext } from './support/context.js';

describe('configuration', () => {
  it('starts with no configuration at all, on documented defaults', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      PORT: 3000,
      HOLD_SECONDS: 120,
      EXPIRY_INTERVAL_SECONDS: 15,
      MAX_SEATS_PER_BOOKING: 10,
      MAX_SEATS_PER_CUSTOMER: 10,
      ENQUEUE_BATCH_SIZE: 100,
      WORKER_CONCURRENCY: 16,
      WORKER_BATCH_SIZE: 200,
      LINE_RELEASE_BATCH_SIZE: 1_000,
      REDIS_URL: 'redis://127.0.0.1:6379',
    });
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('treats empty values as unset', () => {
    expect(loadConfig({ PORT: '', HOLD_SECONDS: '' }).PORT).toBe(3000);
  });

  it.each([
    ['PORT', 'abc'],
    ['PORT', '70000'],
    ['HOLD_SECONDS', '0'],
    ['WORKER_CONCURRENCY', '-1'],
    ['ENQUEUE_BATCH_SIZE', '0'],
    ['ENQUEUE_BATCH_SIZE', '1001'],
    ['DATABASE_URL', 'mysql://x'],
    ['REDIS_URL', 'http://x'],
    ['ADMIN_TOKEN', 'short'],
    ['LOG_LEVEL', 'loud'],
    ['QUEUE_PREFIX', 'has space'],
    ['TRUST_PROXY', 'maybe'],
    ['TRUST_PROXY', 'true'],
    ['TRUST_PROXY', '10.0.0.0/33'],
    ['TRUST_PROXY', '10.0.0.1,lb.internal'],
  ])('a bad %s=%s stops startup with a message naming it', (name, value) => {
    expect(() => loadConfig({ [name]: value })).toThrow(ConfigError);
    expect(() => loadConfig({ [name]: value })).toThrow(new RegExp(`^Invalid configuration:\\n  ${name}: `));
  });

  it('TRUST_PROXY takes a hop count or load balancer addresses, and refuses "true" saying why', () => {
    expect(loadConfig({}).TRUST_PROXY).toBe(false);
    expect(loadConfig({ TRUST_PROXY: 'false' }).TRUST_PROXY).toBe(false);
    expect(loadConfig({ TRUST_PROXY: '1' }).TRUST_PROXY).toEqual({ hops: 1 });
    expect(loadConfig({ TRUST_PROXY: '10.0.0.0/8, 192.0.2.1,::1,loopback' }).TRUST_PROXY).toEqual({
      addresses: ['10.0.0.0/8', '192.0.2.1', '::1', 'loopback'],
    });
    expect(() => loadConfig({ TRUST_PROXY: 'true' })).toThrow(/TRUST_PROXY: "true" would trust every hop/);
  });

  it('accepts a hash-tagged queue prefix for Redis Cluster', () => {
    expect(loadConfig({ QUEUE_PREFIX: '{ticket-rush}' }).QUEUE_PREFIX).toBe('{ticket-rush}');
  });
});

describe('admin token in production', () => {
  let ctx: TestContext;
  beforeAll(async () => {
    ctx = await createTestContext();
  });
  afterAll(async () => ctx?.cleanup());

  it('the API refuses to start without ADMIN_TOKEN when NODE_ENV=production', async () => {
    const config = loadConfig({ DATABASE_URL: ctx.databaseUrl, REDIS_URL: ctx.config.REDIS_URL, NODE_ENV: 'production' });
    await expect(startApi(config, createLogger({ LOG_LEVEL: 'silent' }, 'test'), { listen: false })).rejects.toThrow(/ADMIN_TOKEN: required/);
  });

  it('outside production it generates a token for the run', async () => {
    const api = await ctx.startApi({ ADMIN_TOKEN: '' });
    expect(api.adminToken).toMatch(/^[A-Za-z0-9_-]{32}$/);
    const reply = await api.app.inject({ method: 'GET', url: '/health' });
    expect(reply.statusCode).toBe(200);
  });

  it('workers need no admin token, even in production', async () => {
    const worker = await ctx.startWorker({ ADMIN_TOKEN: '', NODE_ENV: 'production' });
    expect(worker.bookingWorker.isRunning()).toBe(true);
  });
});
