import { sql } from 'drizzle-orm';

/**
 * The moment a statement runs, for everything a claim or a settle decides about time.
 *
 * `now()` is frozen when the transaction begins. A claim that waited on locks (the per-customer
 * advisory locks, specific seats) would otherwise measure its holds from before the wait,
 * handing out shortened or already-lapsed holds, and would not see holds that lapsed while it
 * waited. `clock_timestamp()` is the real time; the sub-select makes Postgres evaluate it once
 * per statement (an InitPlan), so a statement agrees with itself and the value can still serve
 * as an index condition, which a bare volatile call cannot.
 */
export const STATEMENT_NOW = sql.raw('(SELECT clock_timestamp())');
