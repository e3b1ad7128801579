import { drizzle, type NodePgDatabase } from 'drizzle-orm/node-postgres';
import type { ExtractTablesWithRelations } from 'drizzle-orm';
import type { PgTransaction } from 'drizzle-orm/pg-core';
import type { NodePgQueryResultHKT } from 'drizzle-orm/node-postgres';
import pg from 'pg';
import * as schema from './schema/index.js';

export type Schema = typeof schema;
export type Database = NodePgDatabase<Schema>;
export type Transaction = PgTransaction<NodePgQueryResultHKT, Schema, ExtractTablesWithRelations<Schema>>;
/** Queries take either: the same function runs alone or inside a caller's transaction. */
export type Executor = Database | Transaction;

export type DbHandle = { db: Database; pool: pg.Pool };

export type PoolOptions = {
  connectionString: string;
  max: number;
  applicationName: string;
};

export function createDb(options: PoolOptions): DbHandle {
  const pool = new pg.Pool({
    connectionString: options.connectionString,
    max: options.max,
    application_name: options.applicationName,
    // Fail a checkout quickly when Postgres is unreachable rather than queueing forever;
    // callers map the error to a retry (worker) or a 503 (API).
    connectionTimeoutMillis: 5_000,
    idleTimeoutMillis: 30_000,
    // A statement stuck longer than this is a bug or an outage; it must not pin a connection.
    statement_timeout: 30_000,
    // The server-side timeout cannot help when the network itself goes silent (a failover
    // behind a firewall): TCP keepalive lets the kernel notice a dead peer and fail the socket.
    // (pg's client-side query_timeout is not used: it leaves the connection in use and the
    // pool would hand it out again.)
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
    // A transaction left open by a crashed client would keep seat locks; Postgres ends it.
    idle_in_transaction_session_timeout: 60_000,
  });
  // An idle client losing its connection (Postgres restart) emits 'error' on the pool; without
  // a listener Node would crash the process. The next checkout reconnects.
  pool.on('error', () => {});
  // A checked-out client (inside a transaction) has no pool listener: a reset socket makes it
  // emit 'error', which would crash the process. The error also fails the client's query,
  // which is what the caller handles, and the pool discards the dead client on release.
  pool.on('connect', (client) => client.on('error', () => {}));
  const db = drizzle(pool, { schema });
  db.transaction = transactionsOnOwnCheckout(pool, options.max);
  poolSizes.set(db, options.max);
  return { db, pool };
}

const poolSizes = new WeakMap<Database, number>();

/**
 * One statement on its own (no transaction), run again when it failed for a passing reason: on
 * a pooled connection an outage left dead, as `db.transaction`'s BEGIN is (below), or in a
 * deadlock. The failed connection is discarded by the pool, so after at most the pool's size
 * of tries a new one is opened, and if Postgres is really down that fails and the caller sees
 * it. Only for a statement that may run twice: one whose reply was lost after it committed
 * runs again on what it wrote, and must do no harm (the claim batch's first look in
 * shared/booking/decide.ts finds its bookings written, and reports them as decided before).
 */
export async function retriedStatement<T>(db: Database, statement: () => Promise<T>): Promise<T> {
  const tries = (poolSizes.get(db) ?? 1) + 1;
  for (let attempt = 1; ; attempt++) {
    try {
      return await statement();
    } catch (error) {
      if (attempt >= tries || !isTransientDbError(error)) throw error;
    }
  }
}

/**
 * `db.transaction` with the pool client checked out and released here, for two things an
 * outage does to the first transactions after it. The pool hands out an idle client whose
 * socket the outage reset (pg-pool does not check idle clients, and the reset is noticed only
 * when the socket is next read or written), so its BEGIN fails ("write ECONNRESET"):
 * - drizzle-orm 0.45's pooled transaction sends BEGIN before the try whose finally releases
 *   its client (drizzle-team/drizzle-orm#6023, open), so that client stayed checked out for
 *   the life of the process: enough of them and every checkout waits, and pool.end() (graceful
 *   close) never returns. Drizzle run on one checked-out client releases nothing itself, so the
 *   release below covers every way out, BEGIN included.
 * - The request got a 503 although Postgres was back. A BEGIN that failed on a dead connection
 *   did nothing, so it is tried again on another client: the failed one is destroyed, so after
 *   at most `poolSize` tries the pool opens a new connection, and if Postgres is really down
 *   that checkout fails and the caller sees it (a 503, a retried job).
 * One drizzle instance per pooled connection (they live as long as it does), not one per
 * transaction.
 */
function transactionsOnOwnCheckout(pool: pg.Pool, poolSize: number): Database['transaction'] {
  const onClient = new WeakMap<pg.PoolClient, Database>();
  const drizzleOn = (client: pg.PoolClient): Database => {
    let db = onClient.get(client);
    if (!db) {
      db = drizzle(client, { schema });
      onClient.set(client, db);
    }
    return db;
  };
  return async (work, config) => {
    for (let attempt = 1; ; attempt++) {
      const client = await pool.connect();
      let began = false;
      let deadConnection: Error | undefined;
      try {
        return await drizzleOn(client).transaction((tx) => {
          began = true;
          return work(tx);
        }, config);
      } catch (error) {
        if (began || !isTransientDbError(error)) throw error;
        deadConnection = error as Error;
        if (attempt > poolSize) throw error;
      } finally {
        client.release(deadConnection);
      }
    }
  };
}

/** SQLSTATEs that mean "try again": the same work can succeed later without changes. */
const TRANSIENT_SQLSTATES = new Set([
  '40001', // serialization_failure
  '40P01', // deadlock_detected
  '55P03', // lock_not_available
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now
  '53300', // too_many_connections
  // out_of_memory; in practice "out of shared memory": the lock table is full (every claim
  // takes an advisory lock per customer, docs/OPERATIONS.md), and frees as transactions end.
  '53200',
  '08000',
  '08003',
  '08006',
  '08001',
  '08004',
]);

const TRANSIENT_NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND']);

function isTransientItself(error: Error): boolean {
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && (TRANSIENT_SQLSTATES.has(code) || TRANSIENT_NETWORK_CODES.has(code))) return true;
  return /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error/i.test(
    error.message,
  );
}

/**
 * The transient driver error behind `error`, if there is one. Drizzle wraps every failed query
 * in a DrizzleQueryError (message "Failed query: <sql> params: <values>") whose `cause` is the
 * driver's error, so the whole cause chain is searched (bounded, in case a chain loops).
 */
export function transientDbCause(error: unknown): Error | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 8 && current instanceof Error; depth++) {
    if (isTransientItself(current)) return current;
    current = current.cause;
  }
  return undefined;
}

export function isTransientDbError(error: unknown): boolean {
  return transientDbCause(error) !== undefined;
}
