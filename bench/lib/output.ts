import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { renderHtml } from './html.js';
import type { BurstReport } from './report.js';

/** Writes the --json and --html files (creating their folders); the JSON leaves out the id list. */
export async function writeReportFiles(report: BurstReport, files: { json: string | null; html: string | null }): Promise<void> {
  const { acceptedIds: _ids, ...rest } = report;
  if (files.json) {
    await mkdir(path.dirname(path.resolve(files.json)), { recursive: true });
    await writeFile(files.json, `${JSON.stringify(rest, null, 2)}\n`);
  }
  if (files.html) {
    await mkdir(path.dirname(path.resolve(files.html)), { recursive: true });
    await writeFile(files.html, renderHtml(report));
  }
}
