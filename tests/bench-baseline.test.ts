import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { checkoutBaseline, spread } from '../bench/lib/baseline.js';

/**
 * `npm run bench -- --baseline REF`: REF is checked out once under .bench/ with the tree's
 * node_modules, and each figure's A ÷ B ratios are summarised as median and range. The A/B
 * itself is a benchmark run, checked by hand (bench/RESULTS.md, "How to run").
 */

const repo = mkdtempSync(join(tmpdir(), 'bench-baseline-'));
const git = (...args: string[]) => execFileSync('git', ['-c', 'user.email=t@example.com', '-c', 'user.name=t', ...args], { cwd: repo, encoding: 'utf8' }).trim();

afterAll(() => rmSync(repo, { recursive: true, force: true }));

describe('checkoutBaseline', () => {
  it('checks REF out under .bench/ with this tree\'s node_modules, and reuses it', async () => {
    git('init', '-q');
    writeFileSync(join(repo, 'product.ts'), 'export const version = 1;\n');
    git('add', 'product.ts');
    git('commit', '-qm', 'one');
    const first = git('rev-parse', 'HEAD');
    writeFileSync(join(repo, 'product.ts'), 'export const version = 2;\n');
    git('commit', '-qam', 'two');
    mkdirSync(join(repo, 'node_modules'));

    const baseline = await checkoutBaseline('HEAD~1', repo);
    expect(baseline.commit).toBe(first);
    expect(baseline.root).toBe(join(realpathSync(repo), '.bench', `baseline-${first.slice(0, 12)}`));
    expect(readFileSync(join(baseline.root, 'product.ts'), 'utf8')).toContain('version = 1');
    expect(lstatSync(join(baseline.root, 'node_modules')).isSymbolicLink()).toBe(true);
    expect(realpathSync(join(baseline.root, 'node_modules'))).toBe(realpathSync(join(repo, 'node_modules')));

    expect(await checkoutBaseline(first, repo)).toEqual(baseline);
    expect(existsSync(join(repo, 'product.ts'))).toBe(true);
  });

  it('refuses what is not a commit, naming the flag', async () => {
    await expect(checkoutBaseline('no-such-ref', repo)).rejects.toThrow('--baseline: "no-such-ref" is not a commit');
  });
});

describe('the --candidate flag', () => {
  it('is refused without --baseline, before any service or database is touched', async () => {
    const failure = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'bench/run.ts', '--candidate', 'HEAD'], { encoding: 'utf8' }).catch(
      (error: { code: number; stderr: string }) => error,
    );
    expect(failure).toMatchObject({ code: 2 });
    expect((failure as { stderr: string }).stderr).toContain('--candidate needs --baseline');
  });
});

describe('spread of the ratios', () => {
  it('is the median and the range, ignoring figures that were not measured', () => {
    expect(spread([1.2, 0.8, 1])).toEqual({ median: 1, min: 0.8, max: 1.2 });
    expect(spread([0.5, 1.5, 1, 2])).toEqual({ median: 1.25, min: 0.5, max: 2 });
    expect(spread([NaN, 2, Infinity])).toEqual({ median: 2, min: 2, max: 2 });
    expect(spread([])).toEqual({ median: NaN, min: NaN, max: NaN });
  });
});
