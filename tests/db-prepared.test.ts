import { sql } from 'drizzle-orm';
import { describe, expect, it } from 'vitest';
import { executePrepared } from '../shared/db/prepared.js';
import { openTestContext } from './support/context.js';

/**
 * executePrepared runs a statement as a named prepared statement on the connection that runs
 * it (Postgres keeps its plan), one name per text, with the same rows as an unnamed execute.
 */

const ctx = await openTestContext({ DB_POOL_SIZE: '2' });

type Prepared = { name: string; statement: string };
const preparedOnThisConnection = sql`SELECT name, statement FROM pg_prepared_statements WHERE name LIKE 'tr\\_%' ORDER BY statement`;

describe('executePrepared', () => {
  it('prepares each statement once per connection, under a name per text, and answers as execute does', async () => {
    await ctx.db.transaction(async (tx) => {
      const byKey = (key: number) => sql`SELECT ${key}::int AS key, 'a' || ${key}::text AS label`;
      const first = await executePrepared<{ key: number; label: string }>(tx, byKey(1));
      const second = await executePrepared<{ key: number; label: string }>(tx, byKey(2));
      expect(first.rows).toEqual((await tx.execute(byKey(1))).rows);
      expect(second.rows).toEqual([{ key: 2, label: 'a2' }]);
      // Another shape of text is another statement, not a clash of names.
      await executePrepared(tx, sql`SELECT ${3}::int AS key`);

      const statements = (await tx.execute<Prepared>(preparedOnThisConnection)).rows;
      expect(statements.map((row) => row.statement)).toEqual(['SELECT $1::int AS key', "SELECT $1::int AS key, 'a' || $2::text AS label"]);
      expect(new Set(statements.map((row) => row.name)).size).toBe(2);
    });
  });

  it('fails as execute does, and the connection goes on preparing', async () => {
    const failed = ctx.db.transaction((tx) => executePrepared(tx, sql`SELECT 1 / ${0}::int AS broken`));
    // Wrapped as drizzle wraps execute's errors, the driver's error as the cause.
    await expect(failed).rejects.toMatchObject({ cause: { code: '22012' } });
    await ctx.db.transaction(async (tx) => {
      expect((await executePrepared<{ ok: number }>(tx, sql`SELECT ${7}::int AS ok`)).rows).toEqual([{ ok: 7 }]);
    });
  });
});
