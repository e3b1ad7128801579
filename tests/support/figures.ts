import { mkdirSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';

/**
 * Figures a reliability test measured (requests, kills, outage seconds, bad inputs tried...),
 * written to test-results/reliability/<name>.json and printed once, so docs/RELIABILITY.md can
 * quote the latest run.
 */
const DIR = resolve(import.meta.dirname, '../../test-results/reliability');

export function recordFigures(name: string, figures: Record<string, unknown>): void {
  const record = { name, finished_at: new Date().toISOString(), ...figures };
  mkdirSync(DIR, { recursive: true });
  writeFileSync(resolve(DIR, `${name}.json`), `${JSON.stringify(record, null, 2)}\n`);
  console.log(`[figures] ${name}: ${JSON.stringify(figures)}`);
}
