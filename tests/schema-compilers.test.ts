import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { serializerCompiler, validatorCompiler } from '../services/api/schema-compilers.js';
import { BookingStatusView } from '../services/api/schemas.js';

/** How route schemas compile (services/api/schema-compilers.ts): the contract is unchanged by the faster path. */

const route = { method: 'GET', url: '/x' };

describe('answers written from the zod schema', () => {
  const write = serializerCompiler({ ...route, schema: BookingStatusView });

  it('writes what zod wrote: the same JSON for a poll answer, unknown keys dropped', () => {
    const view = { id: 'b1', status: 'HELD', seats: ['A-1'], hold_expires_at: '2026-12-02T00:00:00.000Z', updated_at: '2026-12-02T00:00:00.000Z' };
    const written = JSON.parse(write({ ...view, internal: 'never sent' }));
    expect(written).toEqual(z.encode(BookingStatusView, view as z.output<typeof BookingStatusView>));
    expect(written).not.toHaveProperty('internal');
  });

  it('refuses an answer that lacks a required field', () => {
    expect(() => write({ id: 'b1', status: 'HELD' })).toThrow(/updated_at/);
  });
});

describe('headers checked by zod', () => {
  const headers = z.object({ 'idempotency-key': z.string().regex(/^[\x21-\x7e]{1,255}$/).optional() });

  it('valid headers are left as they came (no copy for Fastify to merge on every read)', () => {
    const check = validatorCompiler({ ...route, schema: headers, httpPart: 'headers' });
    expect(check({ 'idempotency-key': 'k-1', host: 'api' })).toEqual({});
  });

  it('invalid headers are still refused', () => {
    const check = validatorCompiler({ ...route, schema: headers, httpPart: 'headers' });
    expect(check({ 'idempotency-key': 'has space' })).toHaveProperty('error');
  });

  it('a header zod transforms is handed back transformed', () => {
    const check = validatorCompiler({ ...route, schema: z.object({ prefer: z.string().transform((text) => text.trim()) }), httpPart: 'headers' });
    expect(check({ prefer: ' wait=5 ' })).toEqual({ value: { prefer: 'wait=5' } });
  });

  it('other parts keep zod\'s parsed value', () => {
    const check = validatorCompiler({ ...route, schema: z.object({ n: z.number() }), httpPart: 'body' });
    expect(check({ n: 1, extra: true })).toEqual({ value: { n: 1 } });
  });
});
