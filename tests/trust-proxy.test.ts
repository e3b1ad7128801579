import { beforeAll, describe, expect, it } from 'vitest';
import type { RunningApi } from '../services/api/server.js';
import { openTestContext } from './support/context.js';

/**
 * TRUST_PROXY decides whose word the client address is, and so whose rate-limit bucket a
 * request fills. A client may send any X-Forwarded-For it likes; the load balancer appends the
 * address it really saw. Only that appended entry may count.
 */

const ctx = await openTestContext();

const LIMIT = 3;
const LOAD_BALANCER = '10.0.0.5';
const CLIENT = '203.0.113.7';

/** GET /shows through the load balancer, the client having written `spoofed` into the header. */
function viaLoadBalancer(api: RunningApi, spoofed: string | null, client = CLIENT, peer = LOAD_BALANCER) {
  const forwarded = spoofed === null ? client : `${spoofed}, ${client}`;
  return api.app.inject({ method: 'GET', url: '/shows', remoteAddress: peer, headers: { 'x-forwarded-for': forwarded } });
}

/** The client addresses the rate limiter has counted so far (its Redis keys end in the address). */
async function countedAddresses(): Promise<string[]> {
  const namespace = `${ctx.config.QUEUE_PREFIX}:ratelimit:`;
  const keys = await ctx.redis.keys(`${namespace}*`);
  return keys.map((key) => key.slice(namespace.length)).sort();
}

async function clearCounts(): Promise<void> {
  const keys = await ctx.redis.keys(`${ctx.config.QUEUE_PREFIX}:ratelimit:*`);
  if (keys.length > 0) await ctx.redis.del(...keys);
}

describe.each([
  ['a hop count', '1'],
  ['a CIDR list', '10.0.0.0/8, 192.0.2.1'],
])('TRUST_PROXY as %s', (_name, trustProxy) => {
  let api: RunningApi;
  beforeAll(async () => {
    await clearCounts();
    api = await ctx.startApi({ TRUST_PROXY: trustProxy, RATE_LIMIT_PER_MINUTE: String(LIMIT) });
  });

  it('a client inventing a new X-Forwarded-For on every request still fills its own bucket', async () => {
    const statuses: number[] = [];
    for (let index = 0; index <= LIMIT; index++) statuses.push((await viaLoadBalancer(api, `198.51.100.${index}`)).statusCode);
    expect(statuses).toEqual([200, 200, 200, 429]);
    // Forged entries in front of the real one, and several of them, change nothing.
    expect((await viaLoadBalancer(api, '1.1.1.1, 2.2.2.2, 3.3.3.3')).statusCode).toBe(429);
    expect(await countedAddresses()).toEqual([CLIENT]);
    // Another client behind the same load balancer has its own budget.
    expect((await viaLoadBalancer(api, null, '203.0.113.8')).statusCode).toBe(200);
    expect(await countedAddresses()).toEqual([CLIENT, '203.0.113.8']);
    await clearCounts();
  });
});

describe('TRUST_PROXY as an address list', () => {
  it('skips every listed load balancer in a chain, and ignores the header from an unlisted peer', async () => {
    await clearCounts();
    const api = await ctx.startApi({ TRUST_PROXY: '10.0.0.0/8', RATE_LIMIT_PER_MINUTE: String(LIMIT) });
    // Client -> outer balancer 10.0.0.6 -> inner balancer 10.0.0.5 -> API.
    const chained = await api.app.inject({
      method: 'GET',
      url: '/shows',
      remoteAddress: LOAD_BALANCER,
      headers: { 'x-forwarded-for': `6.6.6.6, ${CLIENT}, 10.0.0.6` },
    });
    expect(chained.statusCode).toBe(200);
    expect(await countedAddresses()).toEqual([CLIENT]);
    // A peer that is no listed balancer is the client itself, whatever it writes.
    const direct = await viaLoadBalancer(api, '6.6.6.6', CLIENT, '198.51.100.9');
    expect(direct.statusCode).toBe(200);
    expect(await countedAddresses()).toEqual(['198.51.100.9', CLIENT]);
    await clearCounts();
  });
});

describe('TRUST_PROXY unset', () => {
  it('counts the connecting peer, never the header', async () => {
    await clearCounts();
    const api = await ctx.startApi({ RATE_LIMIT_PER_MINUTE: String(LIMIT) });
    expect((await viaLoadBalancer(api, '6.6.6.6')).statusCode).toBe(200);
    expect(await countedAddresses()).toEqual([LOAD_BALANCER]);
    await clearCounts();
  });
});
