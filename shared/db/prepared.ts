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
 * For statements whose text has a fixed shape, every value a parameter, and whose best plan
 * does not depend on the values: lookups by key, the show's own rows through an index. Not
 * for the seat claims, whose plans depend on how full the show is.
 *
 * The name is a hash of the text, so two shapes of one statement (a clause present or not)
 * never share a name, which node-postgres refuses. Behind PgBouncer in transaction mode,
 * named statements need PgBouncer 1.21 or later with `max_prepared_statements` set
 * (docs/OPERATIONS.md).
 */

const dialect = new PgDialect();
/** Statement texts seen, to their names: a handful of shapes, so the map stays small. */
const names = new Map<string, string>();
const MAX_NAMES = 1_000;

function nameOf(text: string): string {
  let name = names.get(text);
  if (name === undefined) {
    name = `tr_${createHash('sha1').update(text).digest('hex').slice(0, 20)}`;
    // A caller building texts of unbounded shapes is a bug; forgetting bounds what it costs.
    if (names.size >= MAX_NAMES) names.clear();
    names.set(text, name);
  }
  return name;
}

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
