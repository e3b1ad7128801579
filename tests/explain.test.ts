import { describe, expect, it } from 'vitest';
import { explainClaims } from '../bench/lib/explain.js';
import { createShow, generalAdmission } from '../shared/booking/shows.js';
import { openTestContext } from './support/context.js';

/** The bench explains the product's own claim statements: they must render and plan as SQL. */

const ctx = await openTestContext();

describe('bench: EXPLAIN of the claim statements', () => {
  it('plans every statement of a batch on a real show', async () => {
    const show = await createShow(ctx.db, { name: 'Explain', startTime: new Date('2031-01-01T20:00:00Z'), layout: generalAdmission(500) });
    const plans = await explainClaims(ctx.pool, show.id);
    const sections = plans.split('\n\n');
    expect(sections).toHaveLength(6);
    for (const section of sections) expect(section).toMatch(/^-- .+\n.*(Scan|Result|Limit|Aggregate|LockRows)/s);
    // The claim of single seats walks the claim index rather than sorting the whole show.
    expect(sections[0]).toMatch(/seats_claim_idx/);
  });
});
