import { describe, expect, it } from 'vitest';
import { openTestApi } from './support/context.js';
import { call, createShow } from './support/http.js';

/** The seat map says each seat's row as the ticket prints it, next to its number for ordering. */

const { api } = await openTestApi();

type Seat = { label: string; section: string; row: number; row_label: string | null; number: number };

describe('GET /shows/:id/seats', () => {
  it('gives each reserved seat its printed row label: Z for row 26, AA after it', async () => {
    const show = await createShow(api.app, { sections: [{ name: 'Stalls', rows: 28, seats_per_row: 1, price_cents: 500 }] });
    const reply = await call<Seat[]>(api.app, 'GET', `/shows/${show.id}/seats`);
    expect(reply.status).toBe(200);
    const byRow = new Map(reply.body.map((seat) => [seat.row, seat]));
    expect(byRow.get(1)).toMatchObject({ label: 'Stalls-A-1', row: 1, row_label: 'A', number: 1 });
    expect(byRow.get(26)).toMatchObject({ label: 'Stalls-Z-1', row: 26, row_label: 'Z' });
    expect(byRow.get(27)).toMatchObject({ label: 'Stalls-AA-1', row: 27, row_label: 'AA' });
    expect(byRow.get(28)).toMatchObject({ label: 'Stalls-AB-1', row: 28, row_label: 'AB' });
    // The label is always SECTION-ROW_LABEL-NUMBER: one source for the letters.
    for (const seat of reply.body) expect(seat.label).toBe(`${seat.section}-${seat.row_label}-${seat.number}`);
  });

  it('gives general-admission seats no row label (their labels print none)', async () => {
    const show = await createShow(api.app, { total_seats: 3 });
    const reply = await call<Seat[]>(api.app, 'GET', `/shows/${show.id}/seats`);
    expect(reply.body.map((seat) => [seat.label, seat.row, seat.row_label])).toEqual([
      ['1', 1, null],
      ['2', 1, null],
      ['3', 1, null],
    ]);
  });

  it('documents every seat field in the OpenAPI document', async () => {
    const doc = await call(api.app, 'GET', '/docs/json');
    const schema = doc.body.paths['/shows/{id}/seats'].get.responses['200'].content['application/json'].schema;
    const properties = (schema.items ?? schema).properties as Record<string, { description?: string }>;
    expect(Object.keys(properties).sort()).toEqual(['label', 'number', 'price_cents', 'row', 'row_label', 'section', 'status']);
    for (const [name, property] of Object.entries(properties)) expect(property.description, name).toBeTruthy();
  });
});
