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
  return { db: drizzle(pool, { schema }), pool };
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
