/**
 * Keyset pages of a list ordered by (timestamp, id): a page is the rows strictly after the
 * last one of the previous page. `next` is null on the last page.
 */
export type Position = { at: Date; id: string };

export type Page<T> = { items: T[]; next: Position | null };

/** Reads one row past the page to learn whether another page follows. */
export function pageOf<T>(rows: T[], limit: number, positionOf: (row: T) => Position): Page<T> {
  const items = rows.slice(0, limit);
  return { items, next: rows.length > limit ? positionOf(items[items.length - 1]!) : null };
}
