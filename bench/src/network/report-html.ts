import { barChart, colorOf, escapeXml, legend, niceCeil, svg, type Series } from '../report/svg.ts';
import { METRICS, type MetricDef, type Scenario } from './metrics.ts';
import { format } from './report-text.ts';
import type { NetworkBenchResult } from './run.ts';
import type { RoundStat } from './stats.ts';

/** The latency charts: one per scenario that measures latency, its percentiles as bar groups. */
const LATENCY: readonly { readonly scenario: Scenario; readonly title: string; readonly unit: string; readonly keys: readonly (readonly [string, string])[] }[] = [
  { scenario: 'connect', title: 'Connect latency (TCP connect to CONNACK)', unit: 'ms', keys: [['p50Ms', 'p50'], ['p99Ms', 'p99']] },
  { scenario: 'reconnect', title: 'Reconnect latency (persistent clients, TCP connect to CONNACK)', unit: 'ms', keys: [['p50Ms', 'p50'], ['p99Ms', 'p99']] },
  { scenario: 'pingpong', title: 'Ping-pong round trip (PINGREQ to PINGRESP)', unit: 'µs', keys: [['p50Us', 'p50'], ['p99Us', 'p99'], ['p999Us', 'p99.9']] },
];

/**
 * The `tether bench network --report FILE.html` page: one self-contained file (inline CSS and SVG,
 * no script, nothing loaded from elsewhere) with latency percentiles per target (bars: median over
 * rounds; whiskers: min–max over rounds), session present on reconnect, the ratio of each Tether
 * target to each baseline per metric (log scale, 1.0 line), the table of the text report and the
 * CPU readings, and the full result as JSON in `<script type="application/json" id="bench-data">`.
 */
export function renderNetworkHtml(result: NetworkBenchResult): string {
  const s = result.settings;
  const names = result.targets.map((t) => t.name);
  const colorOfTarget = (name: string): string => colorOf(Math.max(0, names.indexOf(name)));
  const compared = names.filter((n) => !(result.baselines as readonly string[]).includes(n));
  const stat = (target: string, scenario: Scenario, key: string): RoundStat | undefined => result.summary[target]?.[scenario]?.[key];

  const latency = LATENCY.filter((l) => s.scenarios.includes(l.scenario)).map((l) => {
    const withData = names.filter((n) => l.keys.some(([key]) => stat(n, l.scenario, key) !== undefined));
    if (withData.length === 0) return '';
    const highest = Math.max(...withData.flatMap((n) => l.keys.map(([key]) => stat(n, l.scenario, key)?.max ?? 0)));
    const title = `${l.title}, ${l.unit}: median over rounds${s.rounds > 1 ? ', whiskers min–max' : ''}`;
    return `<h3>${escapeXml(title)}</h3>\n${barChart({
      title,
      yLabel: l.unit,
      groups: l.keys.map(([, label]) => label),
      yMax: highest > 0 ? niceCeil(highest * 1.05) : 1,
      format,
      series: withData.map((n) => ({ name: n, color: colorOfTarget(n), values: l.keys.map(([key]) => stat(n, l.scenario, key)?.median) })),
      whiskers: withData.map((n) => l.keys.map(([key]) => {
        const r = stat(n, l.scenario, key);
        return r && r.values.length > 1 ? ([r.min, r.max] as const) : undefined;
      })),
      height: 260,
    })}`;
  }).filter(Boolean);

  const sticky = s.scenarios.includes('reconnect') && names.some((n) => stat(n, 'reconnect', 'stickiness'))
    ? barChart({
      title: 'Session present on reconnect: the share of persistent clients routed back to their session',
      yLabel: 'session present',
      groups: ['reconnect'],
      yMax: 1,
      format: (v) => `${Math.round(v * 100)}%`,
      series: names.map((n) => ({ name: n, color: colorOfTarget(n), values: [stat(n, 'reconnect', 'stickiness')?.median] })),
      whiskers: names.map((n) => {
        const r = stat(n, 'reconnect', 'stickiness');
        return [r && r.values.length > 1 ? ([r.min, r.max] as const) : undefined];
      }),
      height: 180,
    })
    : '';

  const ratioRows = METRICS.filter((def) => s.scenarios.includes(def.scenario));
  const ratios = compared.map((target) => {
    const series = result.baselines.map((b) => ({
      name: `${target} / ${b}`,
      color: colorOfTarget(b),
      values: ratioRows.map((def) => result.ratios[target]?.[b]?.[def.scenario]?.[def.key]),
    }));
    const keep = ratioRows.map((_, i) => series.some((x) => x.values[i] !== undefined));
    const rows = ratioRows.filter((_, i) => keep[i]);
    const kept = series.map((x) => ({ ...x, values: x.values.filter((_, i) => keep[i]) }));
    const title = `${target}: ratio to each baseline per metric (median / median, log scale)`;
    return rows.length === 0 ? '' : `<h3>${escapeXml(title)}</h3>\n${legend(kept.map((x) => x.name), kept.map((x) => x.color))}\n${ratioChart({ title, rows, series: kept })}`;
  }).filter(Boolean);

  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>tether bench network: ${escapeXml(names.join(', '))}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 960px; padding: 0 1rem; color: #222; }
h1 { font-size: 1.4rem; } h2 { font-size: 1.1rem; margin-top: 2rem; } h3 { font-size: 0.95rem; font-weight: 600; margin: 1.2rem 0 0.3rem; }
.wide { overflow-x: auto; }
table { border-collapse: collapse; font-size: 0.8rem; margin: 0.5rem 0; }
th, td { padding: 0.25rem 0.5rem; border-bottom: 1px solid #ddd; text-align: right; white-space: nowrap; }
th:first-child, td:first-child, th:nth-child(2), td:nth-child(2) { text-align: left; }
.note, .meta { color: #555; font-size: 0.85rem; }
.legend { list-style: none; padding: 0; display: flex; flex-wrap: wrap; gap: 0.4rem 1.2rem; font-size: 0.85rem; }
.legend span { display: inline-block; width: 0.9rem; height: 0.9rem; margin-right: 0.35rem; vertical-align: -0.1rem; }
</style>
</head>
<body>
<h1>tether bench network</h1>
<p class="meta">${describe(result).map(escapeXml).join('<br>')}</p>
${legend(names)}
<h2>Latency</h2>
${latency.length > 0 ? latency.join('\n') : '<p class="note">No latency scenario ran (connect, reconnect, pingpong).</p>'}
${sticky ? `<h2>Stickiness</h2>\n${sticky}` : ''}
<h2>Ratios to the baselines</h2>
${ratios.length > 0
    ? `<p class="note">Each bar: the Tether target's median over rounds divided by the baseline's. Bars grow from 1.0 (the same); ↑ marks a metric where higher is better (a bar to the right is better), ↓ one where lower is better (a bar to the left is better).</p>\n${ratios.join('\n')}`
    : `<p class="note">${result.baselines.length === 0 ? 'No baseline ran (--baseline none).' : 'No Tether target to compare.'}</p>`}
${metricTable(result)}
${busyTable(result)}
${errorsAndNotes(result)}
<p class="meta">done in ${result.elapsedS.toFixed(0)} s</p>
<script type="application/json" id="bench-data">${jsonForHtml(result)}</script>
</body>
</html>
`;
}

function describe(result: NetworkBenchResult): string[] {
  const s = result.settings;
  const env = result.environment;
  return [
    `${s.rounds} round${s.rounds === 1 ? '' : 's'}, targets ${result.targets.map((t) => t.name).join(', ')} (interleaved, order rotated each round); scenarios ${s.scenarios.join(', ')}`,
    `backends: ${result.backends.description}`,
    `connect and reconnect storms ${s.connections} clients, idle hold ${s.idleConnections}, ${s.concurrency} at a time; ping-pong and publish ${s.durationMs / 1000} s each (QoS 1 window ${s.qos1Window}, ${s.payloadBytes}-byte payloads)`,
    `machine: ${env.cpus} CPUs, Node ${env.node}${env.haproxy ? `, HAProxy ${env.haproxy}` : ''}; load average at the end ${env.loadavg.map((l) => l.toFixed(2)).join(' ')}`,
  ];
}

interface RatioChartOptions {
  readonly title: string;
  /** One row per metric. */
  readonly rows: readonly MetricDef[];
  /** One bar per series in each row (a baseline); undefined leaves a gap. */
  readonly series: readonly Series<number | undefined>[];
}

/** Horizontal bars from 1.0 on a log-2 axis: a ratio of 2 and one of 0.5 are the same length. */
function ratioChart(o: RatioChartOptions): string {
  const margin = { top: 16, right: 24, bottom: 36, left: 250 };
  const width = 900;
  const barHeight = 9;
  const rowHeight = Math.max(18, o.series.length * barHeight + 8);
  const h = o.rows.length * rowHeight;
  const height = margin.top + h + margin.bottom;
  const w = width - margin.left - margin.right;
  const logs = o.series.flatMap((s) => s.values.filter((v): v is number => v !== undefined && v > 0 && Number.isFinite(v)).map((v) => Math.abs(Math.log2(v))));
  const extent = Math.max(1, Math.ceil(Math.max(0, ...logs) + 0.05));
  const x = (v: number): number => margin.left + ((Math.log2(v) + extent) / (2 * extent)) * w;
  const parts: string[] = [];
  const step = Math.max(1, Math.ceil(extent / 4));
  for (let e = -extent; e <= extent; e += step) {
    const v = 2 ** e;
    parts.push(`<line x1="${x(v).toFixed(1)}" x2="${x(v).toFixed(1)}" y1="${margin.top}" y2="${margin.top + h}" stroke="#e5e5e5"/>`);
    parts.push(`<text x="${x(v).toFixed(1)}" y="${margin.top + h + 16}" text-anchor="middle" font-size="11">${escapeXml(`${v >= 1 ? v : Number(v.toPrecision(3))}x`)}</text>`);
  }
  o.rows.forEach((def, r) => {
    const top = margin.top + r * rowHeight;
    if (r % 2 === 1) parts.push(`<rect class="band" x="0" y="${top}" width="${width}" height="${rowHeight}" fill="#f6f6f6"/>`);
    const arrow = def.better === 'higher' ? '↑' : '↓';
    parts.push(`<text x="${margin.left - 8}" y="${top + rowHeight / 2 + 4}" text-anchor="end" font-size="11">${escapeXml(`${def.scenario}: ${def.label} ${arrow}`)}</text>`);
    o.series.forEach((s, i) => {
      const v = s.values[r];
      if (v === undefined || !(v > 0) || !Number.isFinite(v)) return;
      const x0 = x(1);
      const x1 = x(v);
      const by = top + 4 + i * barHeight;
      parts.push(`<rect class="bar" x="${Math.min(x0, x1).toFixed(1)}" y="${by.toFixed(1)}" width="${Math.max(1, Math.abs(x1 - x0)).toFixed(1)}" height="${barHeight - 1}" fill="${s.color}"><title>${escapeXml(`${s.name}, ${def.scenario} ${def.label}: ${v.toFixed(2)}x (${def.better} is better)`)}</title></rect>`);
      parts.push(`<text x="${(x1 + (v >= 1 ? 4 : -4)).toFixed(1)}" y="${(by + barHeight - 1).toFixed(1)}" text-anchor="${v >= 1 ? 'start' : 'end'}" font-size="9" fill="#333">${v.toFixed(2)}</text>`);
    });
  });
  parts.push(`<line class="ideal" x1="${x(1).toFixed(1)}" x2="${x(1).toFixed(1)}" y1="${margin.top}" y2="${margin.top + h}" stroke="#000" stroke-width="1.5"><title>1.0: the same as the baseline</title></line>`);
  parts.push(`<line x1="${margin.left}" x2="${margin.left + w}" y1="${margin.top + h}" y2="${margin.top + h}" stroke="#333"/>`);
  return svg(width, height, o.title, parts);
}

/** The text report's table: a row per metric, a column per target (median, min–max), then the ratios. */
function metricTable(result: NetworkBenchResult): string {
  const s = result.settings;
  const names = result.targets.map((t) => t.name);
  const compared = names.filter((n) => !(result.baselines as readonly string[]).includes(n));
  const header = ['scenario', 'metric', ...names, ...compared.flatMap((t) => result.baselines.map((b) => `${t} / ${b}`))];
  const rows: string[][] = [];
  for (const def of METRICS) {
    if (!s.scenarios.includes(def.scenario)) continue;
    const cells = names.map((name) => {
      const st = result.summary[name]?.[def.scenario]?.[def.key];
      if (!st) return '';
      const f = def.key === 'stickiness' ? (v: number) => v.toFixed(2) : format;
      return st.values.length === 1 ? f(st.median) : `${f(st.median)} (${f(st.min)}–${f(st.max)})`;
    });
    if (cells.every((c) => c === '')) continue;
    const ratios = compared.flatMap((t) => result.baselines.map((b) => {
      const r = result.ratios[t]?.[b]?.[def.scenario]?.[def.key];
      return r === undefined ? '' : `${r.toFixed(2)}x`;
    }));
    rows.push([def.scenario, `${def.label}${def.unit && def.unit !== '/s' ? ` (${def.unit})` : ''} ${def.better === 'higher' ? '↑' : '↓'}`, ...cells, ...ratios]);
  }
  return table('All metrics', 'Cells: median (min–max) over rounds; ratios: target median / baseline median; ↑/↓ = higher/lower is better.', header, rows);
}

function busyTable(result: NetworkBenchResult): string {
  const s = result.settings;
  const f = (x: RoundStat | undefined): string => (x ? x.median.toFixed(2) : '-');
  const rows = result.targets.map(({ name }) => [name, ...s.scenarios.map((sc) => {
    const b = result.busy[name]?.[sc];
    return b ? `${f(b.balancer)} / ${f(b.loadgen)} / ${f(b.backends)}` : '';
  })]);
  return table('CPU busy', 'During the measured parts, median over rounds (1.00 = one core): balancer / load generator / backends.', ['target', ...s.scenarios], rows);
}

function errorsAndNotes(result: NetworkBenchResult): string {
  const errors = Object.entries(result.errors).flatMap(([target, per]) => Object.entries(per).map(([sc, e]) => `${target} ${sc}: ${e.count} failed operations; first: ${e.first}`));
  const lines = [...errors.map((e) => `error: ${e}`), ...result.notes.map((n) => `note: ${n}`)];
  return lines.map((l) => `<p class="note">${escapeXml(l)}</p>`).join('\n');
}

function table(title: string, note: string, header: readonly string[], rows: readonly (readonly string[])[]): string {
  const head = `<tr>${header.map((h) => `<th>${escapeXml(h)}</th>`).join('')}</tr>`;
  const body = rows.map((r) => `<tr>${r.map((cell) => `<td>${escapeXml(cell)}</td>`).join('')}</tr>`).join('\n');
  return `<h2>${escapeXml(title)}</h2>\n<div class="wide"><table>\n${head}\n${body}\n</table></div>\n<p class="note">${escapeXml(note)}</p>`;
}

/** JSON that cannot end the script element early (`</script>` in a config path) or break the page. */
function jsonForHtml(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
}
