import { describe, expect, it } from 'vitest';
import { sql } from 'drizzle-orm';
import { isTransientDbError, transientDbCause } from '../shared/db/client.js';
import { openTestContext } from './support/context.js';

/**
 * Which Postgres failures mean "try again" (the worker retries with backoff and logs one warn
 * line; the API answers 503 with Retry-After), read through drizzle's wrapper to the driver's
 * error, as the worker and the API's error handler read them.
 */

const ctx = await openTestContext();

/** A real driver error from this database, wrapped by drizzle as every failed query is. */
async function failure(statement: ReturnType<typeof sql>): Promise<unknown> {
  return ctx.db.execute(statement).then(
    () => {
      throw new Error('expected the statement to fail');
    },
    (error: unknown) => error,
  );
}

describe('transient database errors', () => {
  it('raised by Postgres with a transient SQLSTATE, including a full lock table (53200), are found under the wrapper', async () => {
    for (const code of ['40001', '40P01', '55P03', '53300', '53200']) {
      const error = await failure(sql.raw(`DO $$ BEGIN RAISE EXCEPTION 'simulated' USING ERRCODE = '${code}'; END $$`));
      expect(isTransientDbError(error), code).toBe(true);
      expect((transientDbCause(error) as { code?: string }).code).toBe(code);
    }
  });

  it('a bad statement or a broken constraint is not transient', async () => {
    expect(isTransientDbError(await failure(sql`SELECT * FROM no_such_table`))).toBe(false);
    expect(isTransientDbError(await failure(sql.raw(`DO $$ BEGIN RAISE EXCEPTION 'simulated' USING ERRCODE = '23505'; END $$`)))).toBe(false);
  });
});
