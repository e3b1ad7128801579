import { sql, type AnyColumn, type SQL } from 'drizzle-orm';
import { timestamp } from 'drizzle-orm/pg-core';

/** Timestamps are always stored with a time zone and read back as Date objects. */
export const timestamptz = (name: string) => timestamp(name, { withTimezone: true, mode: 'date' });

export const createdAt = () => timestamptz('created_at').notNull().defaultNow();
export const updatedAt = () => timestamptz('updated_at').notNull().defaultNow();

/**
 * A list of string literals for SQL (`IN (...)` in a CHECK), from the constant that defines
 * them, so a constraint cannot drift from the type. Raw, because DDL takes no parameters: only
 * for constants of the code, never for input.
 */
export const literalList = (values: readonly string[]): SQL =>
  sql.raw(values.map((value) => `'${value.replaceAll("'", "''")}'`).join(', '));

/** `column BETWEEN min AND max` for a CHECK, from the constant that defines the range (raw, as literalList). */
export const between = (column: SQL | AnyColumn, range: { readonly min: number; readonly max: number }): SQL => {
  if (!Number.isSafeInteger(range.min) || !Number.isSafeInteger(range.max)) throw new Error(`not an integer range: ${range.min}..${range.max}`);
  return sql`${column} BETWEEN ${sql.raw(String(range.min))} AND ${sql.raw(String(range.max))}`;
};
