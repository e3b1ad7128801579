import { z } from 'zod';
import type { Position } from '../../shared/booking/page.js';

/**
 * Cursor pagination for list routes. A cursor is opaque to clients: base64url of the last
 * item's sort key and id, so the next page starts strictly after it (keyset pagination: no
 * OFFSET scan, and no item skipped or repeated when rows are added between pages).
 */

export const DEFAULT_PAGE_SIZE = 50;
export const MAX_PAGE_SIZE = 200;

export function encodeCursor(position: Position): string {
  return Buffer.from(JSON.stringify([position.at.toISOString(), position.id])).toString('base64url');
}

export function decodeCursor(cursor: string): Position | null {
  try {
    const value: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (!Array.isArray(value) || value.length !== 2) return null;
    const [at, id] = value as unknown[];
    if (typeof at !== 'string' || typeof id !== 'string' || !z.uuid().safeParse(id).success) return null;
    const instant = new Date(at);
    return Number.isFinite(instant.getTime()) && instant.toISOString() === at ? { at: instant, id } : null;
  } catch {
    return null;
  }
}

/** Query fields every list route takes. */
export const pageQuery = {
  limit: z.coerce
    .number({ message: `must be a whole number from 1 to ${MAX_PAGE_SIZE}` })
    .int(`must be a whole number from 1 to ${MAX_PAGE_SIZE}`)
    .min(1, `must be a whole number from 1 to ${MAX_PAGE_SIZE}`)
    .max(MAX_PAGE_SIZE, `at most ${MAX_PAGE_SIZE}`)
    .default(DEFAULT_PAGE_SIZE)
    .describe(`Items per page, 1..${MAX_PAGE_SIZE} (default ${DEFAULT_PAGE_SIZE})`),
  cursor: z
    .string()
    .max(200, 'is not a cursor this API gave out')
    .refine((cursor) => decodeCursor(cursor) !== null, 'is not a cursor this API gave out')
    .optional()
    .describe('Opaque: copy it from the `next` link of the previous page'),
};

export const NextLink = z
  .string()
  .nullable()
  .describe('The URL of the next page (same filters, with a cursor), or null on the last page');

/** The next page's URL: the same path and filters, the cursor after the last item. */
export function nextLink(path: string, query: Record<string, string | number | undefined>, next: Position | null): string | null {
  if (!next) return null;
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) if (value !== undefined && key !== 'cursor') params.set(key, String(value));
  params.set('cursor', encodeCursor(next));
  return `${path}?${params.toString()}`;
}
