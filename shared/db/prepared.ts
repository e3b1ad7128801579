import { createHash } from 'node:crypto';
import type { SQL } from 'drizzle-orm';
import { PgDialect } from 'drizzle-orm/pg-core';
import type { QueryResult, QueryResultRow } from 'pg';
import type { Executor } from './client.js';

/**
 * `executor.execute(query)` as a named prepared statement. Drizzle sends raw SQL unnamed, so
 * Postgres parses and plans it on every call; a claim transaction runs several such statements,
 * and under a burst their planning alone was about a sixth of Postgres's CPU (bench/RESULTS.md,
 * session 6). Named, each connection parses a statement once and Postgres keeps its plan
 * (generic once it is no dearer than the custom plans it made first; ANALYZE and DDL replan it).
 *
 * Only for statements whose text has a fixed shape, every value a parameter, and whose plan
 * cannot depend on a table's size: no table at all (advisory locks, a function call), or a
 * write whose only reads are fixed-size lookups. A generic plan is made once, from the
 * statistics of that moment, and kept until the next ANALYZE. Named on a young bookings table
 * (a new database, its first sale), three reads of bookings each kept a sequential scan for a
 * whole burst, one in each of two runs: the duplicate check (5.4 ms a call instead of 0.16), the
 * customers' live seats (3.5 ms instead of 0.13), the seats' hold update (bench/RESULTS.md,
 * session 6). Those stay unnamed and planned per call, as do the seat claims, whose plans
 * depend on how full the show is.
 *
 * The name is a hash of the text, so two shapes of one statement (a clause present or not)
 * never share a name, which node-postgres refuses. Behind PgBouncer in transaction mode,
 * named statements need PgBouncer 1.21 or later with `max_prepared_statements` set
 * (docs/OPERATIONS.md).
 */

const dialect = new PgDialect();

/** A few microseconds for a statement's text, against the planning it saves. */
const nameOf = (text: string): string => `tr_${createHash('sha1').update(text).digest('hex').slice(0, 20)}`;

export async function executePrepared<Row extends QueryResultRow = Record<string, unknown>>(
  executor: Executor,
  query: SQL,
): Promise<QueryResult<Row>> {
  const built = dialect.sqlToQuery(query);
  const session = executor._.session;
  const prepared = session.prepareQuery(built, undefined, nameOf(built.sql), false);
  // What `execute` resolves to on the node-postgres session: pg's result, as tx.execute's.
  return (await prepared.execute()) as QueryResult<Row>;
}
