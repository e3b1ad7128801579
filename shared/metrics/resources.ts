import type { RedisClient } from '../redis.js';
import type pg from 'pg';
import { collectDefaultMetrics, Gauge, Registry } from 'prom-client';

/**
 * Metrics every process exposes. Each process (and each app a test builds) gets its own
 * Registry rather than prom-client's global one, so several can live in one Node process.
 */
export function createRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return registry;
}

/** Connections in use and clients queueing for one: a pool with waiters is the first sign of a slow Postgres. */
export function observePool(registry: Registry, pool: pg.Pool): void {
  new Gauge({
    name: 'ticket_rush_pg_pool_connections',
    help: 'Postgres pool connections by state (in_use, idle)',
    labelNames: ['state'],
    registers: [registry],
    collect() {
      this.set({ state: 'in_use' }, pool.totalCount - pool.idleCount);
      this.set({ state: 'idle' }, pool.idleCount);
    },
  });
  new Gauge({
    name: 'ticket_rush_pg_pool_waiting_clients',
    help: 'Queries waiting for a free Postgres pool connection',
    registers: [registry],
    collect() {
      this.set(pool.waitingCount);
    },
  });
}

export function observeRedis(registry: Registry, redis: RedisClient): void {
  new Gauge({
    name: 'ticket_rush_redis_up',
    help: '1 while the Redis connection is ready, 0 otherwise',
    registers: [registry],
    collect() {
      this.set(redis.status === 'ready' ? 1 : 0);
    },
  });
}
