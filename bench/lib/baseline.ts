import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, realpath, symlink } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import type { ScenarioResult } from './results-md.js';

/**
 * `npm run bench -- --baseline REF`: the same scenarios against another commit's product, A B B A A B
 * on the same Postgres and Redis, so a change proves itself by a ratio measured in one session
 * rather than against figures from another day (issue 16). The generator, audit and monitor are
 * this tree's for both builds: the ratio is the product's (API, workers, migrations), not the bench's.
 */

const run = promisify(execFile);

/** A checkout of REF under .bench/ (git-ignored), reused when it is there already; its node_modules is this tree's. */
export async function checkoutBaseline(ref: string, cwd = process.cwd()): Promise<{ root: string; commit: string }> {
  const git = async (...args: string[]) => (await run('git', args, { cwd })).stdout.trim();
  let commit: string;
  try {
    commit = await git('rev-parse', '--verify', '--end-of-options', `${ref}^{commit}`);
  } catch {
    throw new Error(`--baseline: "${ref}" is not a commit of this repository`);
  }
  const top = await git('rev-parse', '--show-toplevel');
  const root = path.join(top, '.bench', `baseline-${commit.slice(0, 12)}`);
  if (!existsSync(path.join(root, '.git'))) {
    await mkdir(path.dirname(root), { recursive: true });
    await git('worktree', 'add', '--detach', root, commit);
  }
  const modules = path.join(root, 'node_modules');
  if (!existsSync(modules)) await symlink(await realpath(path.join(top, 'node_modules')), modules);
  return { root, commit };
}

/** One figure of a scenario's result, higher or lower being better as `better` says. */
type Figure = { name: string; unit: string; better: 'higher' | 'lower'; of: (result: ScenarioResult) => number };

const cpuPerDecision = (result: ScenarioResult, process: (name: string) => boolean) => {
  const seconds = Object.entries(result.monitor.cpuSeconds).filter(([name]) => process(name)).reduce((sum, [, s]) => sum + s, 0);
  return (seconds * 1e6) / Math.max(1, result.report.requests.decided);
};

export const FIGURES: Figure[] = [
  { name: 'decisions/s (database)', unit: '/s', better: 'higher', of: (r) => r.report.rates.decisionsPerSecondServer ?? r.report.rates.decisionsPerSecondObserved },
  { name: 'accepted/s', unit: '/s', better: 'higher', of: (r) => r.report.rates.acceptedPerSecond },
  { name: 'accept p99', unit: 'ms', better: 'lower', of: (r) => r.report.acceptLatencyMs.p99 },
  { name: 'time to decision p99 (database)', unit: 'ms', better: 'lower', of: (r) => r.report.timeToDecisionMs.server?.p99 ?? NaN },
  { name: 'time to decision p99 (polled)', unit: 'ms', better: 'lower', of: (r) => r.report.timeToDecisionMs.observedByPolling.p99 },
  { name: 'status polls per booking', unit: '', better: 'lower', of: (r) => (r.report.http.poll ? Object.values(r.report.http.poll).reduce((a, b) => a + b, 0) : 0) / Math.max(1, r.report.requests.accepted) },
  { name: 'CPU per decision, API', unit: 'µs', better: 'lower', of: (r) => cpuPerDecision(r, (name) => name.startsWith('api')) },
  { name: 'CPU per decision, workers', unit: 'µs', better: 'lower', of: (r) => cpuPerDecision(r, (name) => name.startsWith('worker')) },
  { name: 'CPU per decision, generator', unit: 'µs', better: 'lower', of: (r) => cpuPerDecision(r, (name) => name.startsWith('generator')) },
  { name: 'CPU per decision, Postgres', unit: 'µs', better: 'lower', of: (r) => cpuPerDecision(r, (name) => name.startsWith('postgres backends')) },
  // The bench database's backends, not Postgres machine-wide: other sessions' databases would count.
  { name: 'CPU per decision, all processes', unit: 'µs', better: 'lower', of: (r) => cpuPerDecision(r, (name) => !name.startsWith('postgres, all processes')) },
  // The drain's own rate (its 'database' rate above counts the filling too); left out for the others.
  { name: 'drain: decisions/s, first → last decision', unit: '/s', better: 'higher', of: (r) => r.report.drain?.decisionsPerSecond ?? NaN },
  // A scheduled opening's (scenario e); not measured, so left out, for the others.
  { name: 'opening → last decision', unit: 'ms', better: 'lower', of: (r) => r.report.opening?.openingToLastDecisionMs ?? NaN },
  { name: 'overtakes', unit: 'pairs', better: 'lower', of: (r) => r.report.opening?.overtakes ?? NaN },
];

/** The median and range of a list of ratios. */
export function spread(values: number[]): { median: number; min: number; max: number } {
  const sorted = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (sorted.length === 0) return { median: NaN, min: NaN, max: NaN };
  const middle = sorted.length >> 1;
  const median = sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
  return { median, min: sorted[0]!, max: sorted.at(-1)! };
}

export type Pair = { round: number; load: number; current: ScenarioResult; baseline: ScenarioResult };

const n = (value: number, digits = 0) => (Number.isFinite(value) ? value.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }) : 'n/a');

/**
 * Markdown: per scenario, each round's figures for both builds, then each figure's ratio
 * (this tree ÷ baseline) as median and min–max over the rounds.
 */
export function renderComparison(heading: { current: string; baseline: string; command: string; machine: string }, pairs: Pair[]): string {
  const lines = [
    `## A/B: this tree (${heading.current}) against ${heading.baseline}`,
    '',
    `Command: \`${heading.command}\`. Machine: ${heading.machine}. Odd rounds run this tree (A) then the baseline (B), even rounds B then A, each on freshly started services; ` +
      'the generator, audit and monitor are this tree\'s for both. Ratio = A ÷ B.',
    '',
  ];
  for (const scenario of [...new Set(pairs.map((p) => p.current.scenario.name))]) {
    const rows = pairs.filter((p) => p.current.scenario.name === scenario);
    const figures = FIGURES.filter((f) => rows.some((p) => Number.isFinite(f.of(p.current)) || Number.isFinite(f.of(p.baseline))));
    lines.push(`### (${scenario}) ${rows[0]!.current.scenario.title}`, '');
    lines.push(`| round (load at start) | build | ${figures.map((f) => `${f.name}${f.unit ? ` (${f.unit})` : ''}`).join(' | ')} | audit |`);
    lines.push(`| --- | --- | ${figures.map(() => '---:').join(' | ')} | --- |`);
    for (const pair of rows) {
      for (const [build, result] of [['A', pair.current], ['B', pair.baseline]] as const) {
        const digits = (f: Figure) => (f.unit === '' ? 2 : 0);
        lines.push(`| ${pair.round} (${n(pair.load, 1)}) | ${build} | ${figures.map((f) => n(f.of(result), digits(f))).join(' | ')} | ${result.report.verdict} |`);
      }
    }
    lines.push('', '| figure | ratio A ÷ B: median | min – max | better when |', '| --- | ---: | ---: | --- |');
    for (const figure of figures) {
      const ratios = spread(rows.map((p) => figure.of(p.current) / figure.of(p.baseline)));
      lines.push(`| ${figure.name} | ${n(ratios.median, 2)} | ${n(ratios.min, 2)} – ${n(ratios.max, 2)} | ${figure.better} |`);
    }
    lines.push('');
  }
  return lines.join('\n');
}
