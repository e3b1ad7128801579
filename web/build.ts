import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';

/**
 * Builds the buyer's page and the admin page from web/ into static files the API serves
 * (services/api/plugins/web-page.ts): dist/web/{index,admin}.html, and dist/web/assets/ with
 * scripts and styles named by content hash, so browsers may keep them for a year and a new
 * build is fetched at once. No CDN and no external font: everything the page needs is here.
 */

const WEB = resolve(import.meta.dirname);
export const WEB_OUT_DIR = resolve(WEB, '../dist/web');

/** The pages, each an HTML file naming its script and the shared stylesheet by source name. */
const PAGES = ['index.html', 'admin.html'];
const ENTRY_POINTS = { buyer: join(WEB, 'src/buyer.ts'), admin: join(WEB, 'src/admin.ts'), styles: join(WEB, 'styles.css') };

export type BuiltFile = { file: string; bytes: number; gzipBytes: number };

export async function buildWebPage(outDir = WEB_OUT_DIR): Promise<BuiltFile[]> {
  const assets = join(outDir, 'assets');
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(assets, { recursive: true });
  const result = await build({
    entryPoints: ENTRY_POINTS,
    outdir: assets,
    entryNames: '[name]-[hash]',
    bundle: true,
    minify: true,
    format: 'esm',
    // Browsers of the last few years, phones included: no transpiling of what they all run.
    target: ['es2022', 'chrome100', 'safari15', 'firefox100'],
    metafile: true,
    legalComments: 'none',
    logLevel: 'warning',
  });
  // Source name (buyer.js, styles.css) → hashed name, for the pages' <script> and <link>.
  const hashed = new Map<string, string>();
  for (const [output, meta] of Object.entries(result.metafile.outputs)) {
    if (!meta.entryPoint) continue;
    const source = basename(meta.entryPoint).replace(/\.ts$/, '.js');
    hashed.set(source, basename(output));
  }
  for (const page of PAGES) {
    const html = readFileSync(join(WEB, page), 'utf8').replace(/(src|href)="\/assets\/([\w.-]+)"/g, (whole, attribute: string, name: string) => {
      const target = hashed.get(name);
      if (!target) throw new Error(`${page} names /assets/${name}, which the build does not produce`);
      return `${attribute}="/assets/${target}"`;
    });
    writeFileSync(join(outDir, page), html);
  }
  return [...PAGES.map((page) => join(outDir, page)), ...[...hashed.values()].map((name) => join(assets, name))].map((file) => {
    const content = readFileSync(file);
    return { file: file.slice(outDir.length + 1), bytes: content.length, gzipBytes: gzipSync(content).length };
  });
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const files = await buildWebPage();
  const kb = (bytes: number) => `${(bytes / 1024).toFixed(1)} KB`;
  for (const { file, bytes, gzipBytes } of files) console.log(`${file.padEnd(32)} ${kb(bytes).padStart(9)}  ${kb(gzipBytes).padStart(8)} gzip`);
  const total = files.reduce((sum, file) => sum + file.gzipBytes, 0);
  console.log(`web page built into ${WEB_OUT_DIR} (${kb(total)} gzip in all)`);
}
