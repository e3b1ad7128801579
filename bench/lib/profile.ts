import { readFileSync } from 'node:fs';

/**
 * Reads a V8 .cpuprofile (from `node --cpu-prof`) and says where the time went: self time by
 * package (our code, each dependency, node internals, GC, idle) and by function, and inclusive
 * time of our own functions (what a phase such as "decide a batch" costs with everything it calls).
 */

type ProfileNode = {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
};
type CpuProfile = { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[]; startTime: number; endTime: number };

export type TimeShare = { name: string; ms: number; percent: number };
export type ProfileSummary = {
  file: string;
  totalMs: number;
  /** Time not idle. */
  busyMs: number;
  byPackage: TimeShare[];
  topSelf: TimeShare[];
  topInclusiveOwn: TimeShare[];
};

const ROOT = `${process.cwd()}/`;

/** The package a frame belongs to: a dependency's name, "our code", "node internals", or a V8 pseudo-frame. */
function packageOf(url: string, functionName: string): string {
  if (!url) return functionName.startsWith('(') ? functionName : '(native)';
  const modules = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  if (modules) return modules[1]!;
  if (url.startsWith('node:')) return 'node internals';
  if (/\/(services|shared)\//.test(url)) return 'our code (services, shared)';
  return 'other';
}

function frameName(node: ProfileNode): string {
  const { functionName, url, lineNumber } = node.callFrame;
  const file = url.replace(/^file:\/\//, '').replace(ROOT, '').replace(/^.*node_modules\//, '');
  return url ? `${functionName || '(anonymous)'} ${file}:${lineNumber + 1}` : functionName || '(anonymous)';
}

function top(map: Map<string, number>, total: number, count: number): TimeShare[] {
  return [...map.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, count)
    .map(([name, us]) => ({ name, ms: us / 1_000, percent: total > 0 ? (us / total) * 100 : 0 }));
}

export function summariseProfile(file: string, count = 15): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);

  const selfByPackage = new Map<string, number>();
  const selfByFrame = new Map<string, number>();
  const inclusiveOwn = new Map<string, number>();
  let total = 0;
  let idle = 0;
  profile.samples.forEach((id, index) => {
    // timeDeltas[i] is the time before sample i; attribute the next delta to this sample.
    const us = profile.timeDeltas[index + 1] ?? 0;
    const node = byId.get(id);
    if (!node) return;
    total += us;
    if (node.callFrame.functionName === '(idle)') idle += us;
    const pkg = packageOf(node.callFrame.url, node.callFrame.functionName);
    selfByPackage.set(pkg, (selfByPackage.get(pkg) ?? 0) + us);
    const name = frameName(node);
    selfByFrame.set(name, (selfByFrame.get(name) ?? 0) + us);
    const seen = new Set<string>();
    for (let current: number | undefined = id; current !== undefined; current = parent.get(current)) {
      const frame = byId.get(current)!;
      if (packageOf(frame.callFrame.url, frame.callFrame.functionName) !== 'our code (services, shared)') continue;
      const key = frameName(frame);
      if (seen.has(key)) continue;
      seen.add(key);
      inclusiveOwn.set(key, (inclusiveOwn.get(key) ?? 0) + us);
    }
  });
  const busy = total - idle;
  return {
    file,
    totalMs: total / 1_000,
    busyMs: busy / 1_000,
    byPackage: top(selfByPackage, total, 12),
    topSelf: top(new Map([...selfByFrame].filter(([name]) => name !== '(idle)')), total, count),
    topInclusiveOwn: top(inclusiveOwn, total, count),
  };
}

export function formatProfile(summary: ProfileSummary, title: string): string {
  const rows = (shares: TimeShare[]) => shares.map((s) => `| ${s.name.replace(/\|/g, '\\|')} | ${s.ms.toFixed(0)} | ${s.percent.toFixed(1)}% |`).join('\n');
  return [
    `#### ${title}`,
    '',
    `Profiled ${(summary.totalMs / 1_000).toFixed(1)} s, of which ${(summary.busyMs / 1_000).toFixed(1)} s on CPU (the rest idle).`,
    '',
    '| Self time by package | ms | share of profile |',
    '| --- | ---: | ---: |',
    rows(summary.byPackage),
    '',
    '| Top functions (self time) | ms | share |',
    '| --- | ---: | ---: |',
    rows(summary.topSelf),
    '',
    '| Our functions (inclusive time) | ms | share |',
    '| --- | ---: | ---: |',
    rows(summary.topInclusiveOwn),
    '',
  ].join('\n');
}
