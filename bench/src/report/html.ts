import type { BenchResult } from '../run.ts';
import { describeScenario, duration, percent } from './format.ts';
import { movedTable, noteLines, stickinessTable, summaryTable, type Table } from './summary.ts';
import { barChart, colorOf, escapeXml, legend, lineChart } from './svg.ts';

/**
 * The `--report FILE.html` page: one self-contained file (inline CSS and SVG, no script, no
 * network) with the tables of the text report, charts of balance over time and of stickiness and
 * moves per event, and the full result as JSON in a `<script type="application/json">` element
 * for anyone who wants to re-plot it.
 */
export function renderHtml(result: BenchResult): string {
  const s = result.scenario;
  const names = result.chains.map((c) => c.name);
  const markers = s.events.map((e) => ({ at: e.atMs / s.stepMs, label: e.label }));
  const xLabel = (step: number): string => duration(step * s.stepMs);
  const xTicks = timeTicks(s.durationMs, s.stepMs);
  const groups = result.windows.map((w) => w.label);

  const balance = lineChart({
    title: 'Balance over time: most loaded backend / mean',
    yLabel: 'max / mean',
    ideal: 1,
    xLabel,
    xTicks,
    markers,
    series: result.chains.map((c, i) => ({ name: c.name, color: colorOf(i), values: c.balance.series.maxMean })),
  });
  const cv = lineChart({
    title: 'Balance over time: coefficient of variation',
    yLabel: 'cv',
    ideal: 0,
    xLabel,
    xTicks,
    markers,
    series: result.chains.map((c, i) => ({ name: c.name, color: colorOf(i), values: c.balance.series.cv })),
  });
  const sticky = barChart({
    title: 'Stickiness per event',
    yLabel: 'kept their session',
    groups,
    yMax: 1,
    format: (v) => percent(v),
    series: result.chains.map((c, i) => ({ name: c.name, color: colorOf(i), values: c.windows.map((w) => w.stickiness) })),
  });
  const moved = barChart({
    title: 'Sessions moved per event (black tick: the minimum)',
    yLabel: 'sessions moved',
    groups,
    format: (v) => Math.round(v).toLocaleString('en-US'),
    series: result.chains.map((c, i) => ({ name: c.name, color: colorOf(i), values: c.windows.map((w) => w.moved) })),
    reference: result.chains.map((c) => c.windows.map((w) => w.forced)),
  });

  const env = result.environment;
  const notes = noteLines(result);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>tether bench strategies: ${escapeXml(s.name)}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 960px; padding: 0 1rem; color: #222; }
h1 { font-size: 1.4rem; } h2 { font-size: 1.1rem; margin-top: 2rem; }
table { border-collapse: collapse; font-size: 0.85rem; margin: 0.5rem 0; }
th, td { padding: 0.25rem 0.6rem; border-bottom: 1px solid #ddd; text-align: right; white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
.note, .meta { color: #555; font-size: 0.85rem; }
.legend { list-style: none; padding: 0; display: flex; flex-wrap: wrap; gap: 0.4rem 1.2rem; font-size: 0.85rem; }
.legend span { display: inline-block; width: 0.9rem; height: 0.9rem; margin-right: 0.35rem; vertical-align: -0.1rem; }
</style>
</head>
<body>
<h1>tether bench strategies: ${escapeXml(s.name)}</h1>
${s.description ? `<p>${escapeXml(s.description)}</p>` : ''}
<p class="meta">${describeScenario(result).map(escapeXml).join('<br>')}<br>source ${escapeXml(s.source)}; ${escapeXml(`${env.node} on ${env.platform}, ${env.cpus} × ${env.cpu}`)}</p>
${table(summaryTable(result))}
${notes.map((n) => `<p class="note">${escapeXml(n)}</p>`).join('\n')}
<h2>Balance over time</h2>
${legend(names)}
${balance}
${cv}
<h2>Per event</h2>
${legend(names)}
${sticky}
${table(stickinessTable(result))}
${moved}
${table(movedTable(result))}
<script type="application/json" id="bench-data">${jsonForHtml(result)}</script>
</body>
</html>
`;
}

const MINUTE = 60_000;
/** Round times for the x axis (every 10m, 30m, 1h, ...), at most about eight of them, as step indices. */
function timeTicks(durationMs: number, stepMs: number): number[] {
  const units = [1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440, 2880, 10080].map((m) => m * MINUTE);
  const every = units.find((u) => u % stepMs === 0 && durationMs / u <= 8) ?? Math.max(stepMs, Math.ceil(durationMs / 8 / stepMs) * stepMs);
  const result: number[] = [];
  for (let t = 0; t < durationMs && result.length < 20; t += every) result.push(t / stepMs);
  return result;
}

function table(t: Table): string {
  const head = `<tr>${t.header.map((h) => `<th>${escapeXml(h)}</th>`).join('')}</tr>`;
  const rows = t.rows.map((r) => `<tr>${r.map((cell) => `<td>${escapeXml(cell)}</td>`).join('')}</tr>`).join('\n');
  return `<h2>${escapeXml(t.title)}</h2>\n<table>\n${head}\n${rows}\n</table>\n<p class="note">${escapeXml(t.note)}</p>`;
}

/** JSON that cannot end the script element early (`</script>` in a chain name) or break the page. */
function jsonForHtml(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
}
