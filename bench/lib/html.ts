import type { AuditReport } from './audit.js';
import type { LatencyBucket, LatencySummary } from './latency.js';
import { rateLimitWarning, type BurstReport } from './report.js';

/**
 * The --html report: one self-contained page (inline SVG, inline CSS, no scripts, no CDN) that
 * a person can open from disk or attach to a ticket.
 */

type Series = { name: string; color: string; points: Array<[number, number]> };

const escape = (text: string) =>
  text.replace(/[&<>"']/g, (char) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[char]!);
const fmt = (value: number, digits = 1) => value.toLocaleString('en-US', { maximumFractionDigits: digits });

/** A "nice" upper bound for an axis: 1, 2 or 5 times a power of ten. */
function niceMax(value: number): number {
  if (value <= 0) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 5, 10]) if (value <= step * power) return step * power;
  return 10 * power;
}

function lineChart(title: string, series: Series[], xLabel: string, yLabel: string): string {
  const width = 760;
  const height = 260;
  const left = 64;
  const right = 16;
  const top = 28;
  const bottom = 40;
  const all = series.flatMap((s) => s.points);
  if (all.length === 0) return `<h3>${escape(title)}</h3><p class="muted">no data</p>`;
  const xMax = niceMax(Math.max(...all.map(([x]) => x)));
  const yMax = niceMax(Math.max(...all.map(([, y]) => y)));
  const sx = (x: number) => left + (x / xMax) * (width - left - right);
  const sy = (y: number) => top + (1 - y / yMax) * (height - top - bottom);
  const ticks = [0, 0.25, 0.5, 0.75, 1];
  const grid = ticks
    .map((f) => {
      const y = sy(f * yMax);
      const x = sx(f * xMax);
      return (
        `<line x1="${left}" x2="${width - right}" y1="${y}" y2="${y}" class="grid"/>` +
        `<text x="${left - 6}" y="${y + 4}" text-anchor="end">${fmt(f * yMax, 0)}</text>` +
        `<text x="${x}" y="${height - bottom + 16}" text-anchor="middle">${fmt(f * xMax, 1)}</text>`
      );
    })
    .join('');
  const paths = series
    .map((s) => {
      if (s.points.length === 0) return '';
      const d = s.points.map(([x, y], i) => `${i === 0 ? 'M' : 'L'}${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join('');
      return `<path d="${d}" fill="none" stroke="${s.color}" stroke-width="2"/>`;
    })
    .join('');
  const legend = series
    .map((s, i) => `<rect x="${left + i * 170}" y="8" width="12" height="12" fill="${s.color}"/><text x="${left + i * 170 + 16}" y="18">${escape(s.name)}</text>`)
    .join('');
  return (
    `<h3>${escape(title)}</h3><svg viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img">` +
    `${grid}${paths}${legend}` +
    `<text x="${(left + width - right) / 2}" y="${height - 6}" text-anchor="middle">${escape(xLabel)}</text>` +
    `<text x="14" y="${(top + height - bottom) / 2}" text-anchor="middle" transform="rotate(-90 14 ${(top + height - bottom) / 2})">${escape(yLabel)}</text>` +
    `</svg>`
  );
}

function histogram(title: string, buckets: LatencyBucket[] | null, summary: LatencySummary | null): string {
  if (!buckets || buckets.length === 0 || !summary) return `<h3>${escape(title)}</h3><p class="muted">no data</p>`;
  const width = 760;
  const height = 220;
  const left = 64;
  const bottom = 48;
  const top = 16;
  const max = Math.max(...buckets.map((b) => b.count));
  const barWidth = (width - left - 16) / buckets.length;
  const bars = buckets
    .map((b, i) => {
      const h = (b.count / max) * (height - top - bottom);
      const x = left + i * barWidth;
      const label = b.upToMs < 1 ? fmt(b.upToMs, 3) : b.upToMs < 100 ? fmt(b.upToMs, 1) : fmt(b.upToMs, 0);
      return (
        `<rect x="${x.toFixed(1)}" y="${(height - bottom - h).toFixed(1)}" width="${Math.max(1, barWidth - 2).toFixed(1)}" height="${h.toFixed(1)}" fill="#4e79a7"><title>≤ ${label} ms: ${b.count}</title></rect>` +
        (i % Math.ceil(buckets.length / 12) === 0
          ? `<text x="${(x + barWidth / 2).toFixed(1)}" y="${height - bottom + 14}" text-anchor="end" transform="rotate(-35 ${(x + barWidth / 2).toFixed(1)} ${height - bottom + 14})">${label}</text>`
          : '')
      );
    })
    .join('');
  return (
    `<h3>${escape(title)}</h3><p class="muted">p50 ${fmt(summary.p50)} ms · p95 ${fmt(summary.p95)} ms · p99 ${fmt(summary.p99)} ms · max ${fmt(summary.max)} ms · n=${summary.count} (log-scale buckets, upper bound in ms)</p>` +
    `<svg viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img">` +
    `<text x="${left - 6}" y="${top + 8}" text-anchor="end">${max}</text><text x="${left - 6}" y="${height - bottom}" text-anchor="end">0</text>${bars}</svg>`
  );
}

function recordTable(title: string, record: Record<string, number>): string {
  const rows = Object.entries(record)
    .map(([key, value]) => `<tr><td>${escape(key)}</td><td class="num">${value.toLocaleString('en-US')}</td></tr>`)
    .join('');
  return `<h3>${escape(title)}</h3><table>${rows || '<tr><td colspan="2" class="muted">none</td></tr>'}</table>`;
}

function auditSection(audit: AuditReport | null): string {
  if (!audit) return '<h2>Audit</h2><p class="muted">Not run.</p>';
  const rows = audit.checks
    .map(
      (c) =>
        `<tr class="${c.ok ? 'ok' : 'bad'}"><td>${c.ok ? 'PASS' : 'FAIL'}</td><td>${escape(c.title)}</td><td class="num">${c.violations}</td>` +
        `<td>${c.examples.map(escape).join('<br>')}</td></tr>`,
    )
    .join('');
  return (
    `<h2>Audit: <span class="${audit.ok ? 'ok' : 'bad'}">${audit.ok ? 'PASS' : 'FAIL'}</span></h2>` +
    `<p class="muted">${audit.shows} show(s), ${audit.acceptedChecked} accepted request(s), read from the database.</p>` +
    `<table><tr><th></th><th>Check</th><th>Violations</th><th>Examples</th></tr>${rows}</table>`
  );
}

export function renderHtml(report: BurstReport): string {
  const t = report.timeline;
  const decidedServer = report.serverTimeline
    ? (() => {
        let total = 0;
        return report.serverTimeline.filter((bin) => bin.t >= 0).map((bin): [number, number] => [bin.t + 1, (total += bin.decided)]);
      })()
    : [];
  const progress = lineChart(
    'Accepted and decided over time (cumulative)',
    [
      { name: 'accepted', color: '#4e79a7', points: t.map((s) => [s.t, s.accepted]) },
      { name: 'decided (polled)', color: '#f28e2b', points: t.map((s) => [s.t, s.decided]) },
      ...(decidedServer.length ? [{ name: 'decided (database)', color: '#59a14f', points: decidedServer }] : []),
      { name: 'confirmed', color: '#b07aa1', points: t.map((s) => [s.t, s.confirmed]) },
    ],
    'seconds since the first request',
    'requests',
  );
  const depth = lineChart(
    `Queue depth over time (${report.queueDepthSource === 'redis' ? 'requests waiting, from the request index in Redis' : 'estimated from API queue positions'})`,
    [
      { name: 'waiting', color: '#e15759', points: t.filter((s) => s.queueDepth !== null).map((s) => [s.t, s.queueDepth!]) },
      { name: 'batch jobs active', color: '#76b7b2', points: t.filter((s) => s.active !== null).map((s) => [s.t, s.active!]) },
      { name: 'generator in flight', color: '#9c755f', points: t.map((s) => [s.t, s.inFlight]) },
    ],
    'seconds since the first request',
    'requests',
  );
  const r = report.requests;
  const headline = [
    ['Requests', `${r.planned.toLocaleString('en-US')} planned, ${r.accepted.toLocaleString('en-US')} accepted, ${r.decided.toLocaleString('en-US')} decided, ${r.undecided} undecided`],
    ['Accepted per second', fmt(report.rates.acceptedPerSecond)],
    ['Decisions per second', `${report.rates.decisionsPerSecondServer === null ? 'n/a' : fmt(report.rates.decisionsPerSecondServer)} (database), ${fmt(report.rates.decisionsPerSecondObserved)} (polled)`],
    ['Accept latency p50 / p95 / p99 / max', `${fmt(report.acceptLatencyMs.p50)} / ${fmt(report.acceptLatencyMs.p95)} / ${fmt(report.acceptLatencyMs.p99)} / ${fmt(report.acceptLatencyMs.max)} ms`],
    ...(report.sendLagMs
      ? [['  of which the generator sent late, p50 / p99', `${fmt(report.sendLagMs.p50)} / ${fmt(report.sendLagMs.p99)} ms`] as [string, string]]
      : []),
    ...(report.timeToDecisionMs.server
      ? [['Time to decision (database) p50 / p95 / p99 / max', `${fmt(report.timeToDecisionMs.server.p50)} / ${fmt(report.timeToDecisionMs.server.p95)} / ${fmt(report.timeToDecisionMs.server.p99)} / ${fmt(report.timeToDecisionMs.server.max)} ms`]]
      : []),
    ['Time to decision (polled) p50 / p95 / p99 / max', `${fmt(report.timeToDecisionMs.observedByPolling.p50)} / ${fmt(report.timeToDecisionMs.observedByPolling.p95)} / ${fmt(report.timeToDecisionMs.observedByPolling.p99)} / ${fmt(report.timeToDecisionMs.observedByPolling.max)} ms`],
    ['5xx answers (not retried 503s)', String(report.serverErrors)],
    ['Generator CPU', `${fmt(report.generator.cpuPercentOfOneCore)}% of one core`],
  ]
    .map(([k, v]) => `<tr><th>${escape(k!)}</th><td>${escape(v!)}</td></tr>`)
    .join('');
  const http = Object.entries(report.http)
    .map(([kind, codes]) => recordTable(`HTTP answers: ${kind}`, codes))
    .join('');
  const o = report.options;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Burst report ${escape(report.startedAt)}</title>
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:820px;color:#222}
h1{font-size:22px}h2{margin-top:32px;border-bottom:1px solid #ddd}h3{font-size:15px;margin:20px 0 4px}
table{border-collapse:collapse;margin:6px 0}td,th{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}
.num{text-align:right}.muted{color:#777}.ok{color:#2a7a2a}.bad{color:#b00020;font-weight:600}
svg{font:11px system-ui,sans-serif;fill:#444}svg .grid{stroke:#eee}
</style></head><body>
<h1>Burst report</h1>
<p class="muted">${escape(report.startedAt)} · ${escape(o.urls.join(', '))} · ${report.shows.length} show(s) · ${o.requests} requests · ${o.concurrency} in flight · arrival ${escape(o.arrival.kind)} · seats ${o.seatCount.min}-${o.seatCount.max} · specific ${o.specificSeatsRatio} · confirm ${o.confirmRatio} · seed ${o.seed}</p>
${rateLimitWarning(report).length > 0 ? `<p class="bad">${rateLimitWarning(report).filter((line) => !/^!+$/.test(line)).map(escape).join('<br>')}</p>` : ''}
<table>${headline}</table>
${auditSection(report.audit)}
<h2>Over time</h2>${progress}${depth}
<h2>Latency</h2>
${histogram('Accept latency (POST /booking → 202)', report.histograms.acceptLatency, report.acceptLatencyMs)}
${histogram('Time to decision, database (accepted_at → decided_at)', report.histograms.timeToDecisionServer, report.timeToDecisionMs.server)}
${histogram('Time to decision, polled (submit → first poll seeing HELD/FAILED)', report.histograms.timeToDecisionObserved, report.timeToDecisionMs.observedByPolling)}
<h2>Outcomes</h2>
${recordTable('Decisions by status and reason', report.outcomes)}
${recordTable('Settled holds', { confirmed: report.settle.confirmed, cancelled: report.settle.cancelled, 'left to lapse': report.settle.leftToLapse, ...report.settle.rejected })}
${http}
${recordTable('Retried after Retry-After (429/503, not errors)', report.retried)}
${recordTable('Errors', report.errors)}
</body></html>
`;
}
