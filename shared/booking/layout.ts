/**
 * Seat layout: how a show's sections turn into seats and labels, and how a label is checked
 * without a database (the API validates specific-seat requests from this alone).
 *
 * - general admission: one section "GA", one row, labels "1".."N";
 * - reserved seating: labels "SECTION-ROW-NUMBER", rows lettered A..Z, AA..AZ, BA.. (as on tickets).
 */

export type Seating = 'general' | 'reserved';

export type SectionLayout = {
  name: string;
  rank: number;
  rows: number;
  seatsPerRow: number;
  priceCents: number;
};

export type ShowLayout = { seating: Seating; sections: SectionLayout[] };

export type SeatSpec = {
  label: string;
  section: string;
  sectionRank: number;
  row: number;
  number: number;
  priceCents: number;
};

export const GENERAL_SECTION = 'GA';
export const MAX_SEATS_PER_SHOW = 100_000;

/** 1 → "A", 26 → "Z", 27 → "AA": spreadsheet-style row letters. */
export function rowName(row: number): string {
  let name = '';
  for (let n = row; n > 0; n = Math.floor((n - 1) / 26)) {
    name = String.fromCharCode(65 + ((n - 1) % 26)) + name;
  }
  return name;
}

/** Inverse of rowName; returns null for anything that is not uppercase letters. */
export function rowIndex(name: string): number | null {
  if (!/^[A-Z]{1,3}$/.test(name)) return null;
  let row = 0;
  for (const char of name) row = row * 26 + (char.charCodeAt(0) - 64);
  return row;
}

/** The row as printed on the ticket ("Z", "AA"); general admission prints no row. */
export function rowLabel(seating: Seating, row: number): string | null {
  return seating === 'general' ? null : rowName(row);
}

export function seatLabel(seating: Seating, section: string, row: number, number: number): string {
  return seating === 'general' ? String(number) : `${section}-${rowLabel(seating, row)}-${number}`;
}

export function totalSeats(layout: ShowLayout): number {
  return layout.sections.reduce((sum, section) => sum + section.rows * section.seatsPerRow, 0);
}

export function* generateSeats(layout: ShowLayout): Generator<SeatSpec> {
  for (const section of layout.sections) {
    for (let row = 1; row <= section.rows; row++) {
      for (let number = 1; number <= section.seatsPerRow; number++) {
        yield {
          label: seatLabel(layout.seating, section.name, row, number),
          section: section.name,
          sectionRank: section.rank,
          row,
          number,
          priceCents: section.priceCents,
        };
      }
    }
  }
}

/** The section a label belongs to, or null when no seat of this show has that label. */
export function sectionOfLabel(layout: ShowLayout, label: string): SectionLayout | null {
  if (layout.seating === 'general') {
    const section = layout.sections[0];
    if (!section || !/^[1-9][0-9]{0,5}$/.test(label)) return null;
    return Number(label) <= section.seatsPerRow * section.rows ? section : null;
  }
  const match = /^(.+)-([A-Z]{1,3})-([1-9][0-9]{0,4})$/.exec(label);
  if (!match) return null;
  const [, sectionName, rowLetters, numberText] = match as unknown as [string, string, string, string];
  const section = layout.sections.find((candidate) => candidate.name === sectionName);
  const row = rowIndex(rowLetters);
  if (!section || row === null) return null;
  return row <= section.rows && Number(numberText) <= section.seatsPerRow ? section : null;
}
