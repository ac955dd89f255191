/**
 * Two small chart kinds drawn as inline SVG strings, so the HTML report is one self-contained file
 * that opens offline, with no script or library. Every text that comes from the scenario goes
 * through `escapeXml`.
 */

/** Okabe–Ito: distinguishable with the common colour-vision deficiencies. */
export const PALETTE = ['#0072B2', '#E69F00', '#009E73', '#CC79A7', '#D55E00', '#56B4E9', '#F0E442', '#000000'];

export function colorOf(index: number): string {
  return PALETTE[index % PALETTE.length]!;
}

export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export interface Series<V> {
  readonly name: string;
  readonly color: string;
  readonly values: readonly V[];
}

const MARGIN = { top: 16, right: 16, bottom: 40, left: 72 };

/** About `count` round tick values covering [min, max]. */
function ticks(min: number, max: number, count: number): number[] {
  const span = max - min || 1;
  const raw = span / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * magnitude).find((s) => s >= raw) ?? raw;
  const result: number[] = [];
  for (let v = Math.ceil(min / step) * step; v <= max + step * 1e-9 && result.length < 50; v += step) result.push(Number(v.toPrecision(12)));
  return result;
}

/** The next round number at or above v (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8 × a power of ten): a tidy top for the axis. */
export function niceCeil(v: number): number {
  const magnitude = 10 ** Math.floor(Math.log10(v));
  return ([1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10].find((f) => f * magnitude >= v) ?? 10) * magnitude;
}

export interface LineChartOptions {
  readonly title: string;
  readonly yLabel: string;
  readonly series: readonly Series<number | null>[];
  /** Label for step i on the x axis. */
  readonly xLabel: (i: number) => string;
  /** Steps to put a tick and label at (default: about eight round numbers of steps). */
  readonly xTicks?: readonly number[];
  /** Vertical markers (events) at step positions. */
  readonly markers: readonly { readonly at: number; readonly label: string }[];
  /** The y value that means "perfect" (1 for max/mean, 0 for cv), drawn as a faint line. */
  readonly ideal?: number;
  readonly width?: number;
  readonly height?: number;
}

/** One line per series over the steps; gaps where a value is null. */
export function lineChart(o: LineChartOptions): string {
  const width = o.width ?? 900;
  const height = o.height ?? 300;
  const w = width - MARGIN.left - MARGIN.right;
  const h = height - MARGIN.top - MARGIN.bottom;
  const n = Math.max(1, ...o.series.map((s) => s.values.length));
  const all = o.series.flatMap((s) => s.values.filter((v): v is number => v !== null && Number.isFinite(v)));
  const yMin = Math.min(o.ideal ?? Infinity, ...all, 0);
  const yMax = Math.max(...all, (o.ideal ?? 0) + 0.1);
  const x = (i: number): number => MARGIN.left + (n <= 1 ? 0 : (i / (n - 1)) * w);
  const y = (v: number): number => MARGIN.top + h - ((v - yMin) / (yMax - yMin || 1)) * h;
  const parts: string[] = [];
  for (const t of ticks(yMin, yMax, 5)) {
    parts.push(`<line x1="${MARGIN.left}" x2="${MARGIN.left + w}" y1="${y(t)}" y2="${y(t)}" stroke="#e5e5e5"/>`);
    parts.push(`<text x="${MARGIN.left - 6}" y="${y(t) + 4}" text-anchor="end" font-size="11">${t}</text>`);
  }
  for (const t of o.xTicks ?? ticks(0, n - 1, 8).filter((t) => Number.isInteger(t))) {
    parts.push(`<text x="${x(t)}" y="${MARGIN.top + h + 16}" text-anchor="middle" font-size="11">${escapeXml(o.xLabel(t))}</text>`);
  }
  if (o.ideal !== undefined) parts.push(`<line x1="${MARGIN.left}" x2="${MARGIN.left + w}" y1="${y(o.ideal)}" y2="${y(o.ideal)}" stroke="#999" stroke-dasharray="2 3"/>`);
  for (const m of o.markers) {
    parts.push(`<line x1="${x(m.at)}" x2="${x(m.at)}" y1="${MARGIN.top}" y2="${MARGIN.top + h}" stroke="#888" stroke-dasharray="4 4"/>`);
    parts.push(`<text x="${x(m.at) + 3}" y="${MARGIN.top + 10}" font-size="11" fill="#555">${escapeXml(m.label)}</text>`);
  }
  for (const s of o.series) {
    // A new path segment after each gap, so undefined stretches are not drawn as flat lines.
    let d = '';
    let pen = false;
    s.values.forEach((v, i) => {
      if (v === null || !Number.isFinite(v)) {
        pen = false;
        return;
      }
      d += `${pen ? 'L' : 'M'}${x(i).toFixed(1)},${y(v).toFixed(1)}`;
      pen = true;
    });
    parts.push(`<path d="${d}" fill="none" stroke="${s.color}" stroke-width="1.5"><title>${escapeXml(s.name)}</title></path>`);
  }
  parts.push(`<line x1="${MARGIN.left}" x2="${MARGIN.left}" y1="${MARGIN.top}" y2="${MARGIN.top + h}" stroke="#333"/>`);
  parts.push(`<line x1="${MARGIN.left}" x2="${MARGIN.left + w}" y1="${MARGIN.top + h}" y2="${MARGIN.top + h}" stroke="#333"/>`);
  parts.push(`<text x="14" y="${MARGIN.top + h / 2}" transform="rotate(-90 14 ${MARGIN.top + h / 2})" text-anchor="middle" font-size="12">${escapeXml(o.yLabel)}</text>`);
  return svg(width, height, o.title, parts);
}

export interface BarChartOptions {
  readonly title: string;
  readonly yLabel: string;
  /** One group per window (event). */
  readonly groups: readonly string[];
  /** One bar per series in each group; undefined leaves a gap. */
  readonly series: readonly Series<number | undefined>[];
  /** Optional per-series, per-group reference value drawn as a black tick on the bar (the minimum). */
  readonly reference?: readonly (readonly (number | undefined)[])[];
  /** Optional per-series, per-group [low, high] range drawn as a whisker over the bar (min–max over rounds). */
  readonly whiskers?: readonly (readonly (readonly [number, number] | undefined)[])[];
  /** A y value drawn as a dashed reference line across the chart (1 for ratios). */
  readonly ideal?: number;
  readonly format: (v: number) => string;
  readonly yMax?: number;
  readonly width?: number;
  readonly height?: number;
}

/** Grouped vertical bars: groups along x, one bar per series in each. */
export function barChart(o: BarChartOptions): string {
  const width = o.width ?? 900;
  const height = o.height ?? 300;
  const w = width - MARGIN.left - MARGIN.right;
  const h = height - MARGIN.top - MARGIN.bottom;
  const values = o.series.flatMap((s) => s.values.filter((v): v is number => v !== undefined));
  const whiskerTops = (o.whiskers ?? []).flat().filter((r) => r !== undefined).map((r) => r[1]);
  const highest = Math.max(1, ...values, ...(o.reference ?? []).flat().filter((v): v is number => v !== undefined), ...whiskerTops.filter(Number.isFinite), o.ideal ?? 0);
  const yMax = o.yMax ?? niceCeil(highest * 1.05);
  const y = (v: number): number => MARGIN.top + h - (v / yMax) * h;
  const groupWidth = w / Math.max(1, o.groups.length);
  const barWidth = (groupWidth * 0.8) / Math.max(1, o.series.length);
  const parts: string[] = [];
  for (const t of ticks(0, yMax, 5)) {
    parts.push(`<line x1="${MARGIN.left}" x2="${MARGIN.left + w}" y1="${y(t)}" y2="${y(t)}" stroke="#e5e5e5"/>`);
    parts.push(`<text x="${MARGIN.left - 6}" y="${y(t) + 4}" text-anchor="end" font-size="11">${escapeXml(o.format(t))}</text>`);
  }
  o.groups.forEach((group, g) => {
    const left = MARGIN.left + g * groupWidth + groupWidth * 0.1;
    parts.push(`<text x="${MARGIN.left + (g + 0.5) * groupWidth}" y="${MARGIN.top + h + 16}" text-anchor="middle" font-size="11">${escapeXml(group)}</text>`);
    o.series.forEach((s, i) => {
      const v = s.values[g];
      const bx = left + i * barWidth;
      if (v !== undefined) {
        parts.push(`<rect x="${bx.toFixed(1)}" y="${y(v).toFixed(1)}" width="${Math.max(1, barWidth - 2).toFixed(1)}" height="${(MARGIN.top + h - y(v)).toFixed(1)}" fill="${s.color}"><title>${escapeXml(`${s.name}, ${group}: ${o.format(v)}`)}</title></rect>`);
      }
      const ref = o.reference?.[i]?.[g];
      if (ref !== undefined) {
        parts.push(`<line x1="${bx.toFixed(1)}" x2="${(bx + Math.max(1, barWidth - 2)).toFixed(1)}" y1="${y(ref).toFixed(1)}" y2="${y(ref).toFixed(1)}" stroke="#000" stroke-width="2"><title>${escapeXml(`minimum: ${o.format(ref)}`)}</title></line>`);
      }
      const range = o.whiskers?.[i]?.[g];
      if (range !== undefined) {
        const cx = (bx + Math.max(1, barWidth - 2) / 2).toFixed(1);
        const cap = Math.min(6, Math.max(1, barWidth - 2) / 3);
        const [lo, hi] = [y(range[0]).toFixed(1), y(Math.min(range[1], yMax)).toFixed(1)];
        const caps = [lo, hi].map((cy) => `<line x1="${(Number(cx) - cap).toFixed(1)}" x2="${(Number(cx) + cap).toFixed(1)}" y1="${cy}" y2="${cy}"/>`).join('');
        parts.push(`<g class="whisker" stroke="#000" stroke-width="1.2"><line x1="${cx}" x2="${cx}" y1="${lo}" y2="${hi}"/>${caps}<title>${escapeXml(`${s.name}, ${group}: ${o.format(range[0])} to ${o.format(range[1])}`)}</title></g>`);
      }
    });
  });
  if (o.ideal !== undefined) parts.push(`<line x1="${MARGIN.left}" x2="${MARGIN.left + w}" y1="${y(o.ideal).toFixed(1)}" y2="${y(o.ideal).toFixed(1)}" stroke="#555" stroke-dasharray="4 3"/>`);
  parts.push(`<line x1="${MARGIN.left}" x2="${MARGIN.left}" y1="${MARGIN.top}" y2="${MARGIN.top + h}" stroke="#333"/>`);
  parts.push(`<line x1="${MARGIN.left}" x2="${MARGIN.left + w}" y1="${MARGIN.top + h}" y2="${MARGIN.top + h}" stroke="#333"/>`);
  parts.push(`<text x="14" y="${MARGIN.top + h / 2}" transform="rotate(-90 14 ${MARGIN.top + h / 2})" text-anchor="middle" font-size="12">${escapeXml(o.yLabel)}</text>`);
  return svg(width, height, o.title, parts);
}

/** The outer <svg> element of a chart: scales to the page width, titled for screen readers. */
export function svg(width: number, height: number, title: string, parts: readonly string[]): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${width} ${height}" width="100%" role="img" aria-label="${escapeXml(title)}" font-family="system-ui, sans-serif"><title>${escapeXml(title)}</title>${parts.join('')}</svg>`;
}

/** The colour key shared by every chart. */
export function legend(names: readonly string[], colors?: readonly string[]): string {
  return `<ul class="legend">${names.map((n, i) => `<li><span style="background:${colors?.[i] ?? colorOf(i)}"></span>${escapeXml(n)}</li>`).join('')}</ul>`;
}
