import { METRICS, type MetricDef } from './metrics.ts';
import type { NetworkBenchResult } from './run.ts';
import type { RoundStat } from './stats.ts';

export interface TextOptions {
  /** A terminal: Unicode rules and dashes, bold header. Otherwise plain ASCII lines (CI logs, files). */
  readonly tty?: boolean;
}

/**
 * The result as a table: one row per metric, one column per target (median and min-max over
 * rounds), then the ratio of each Tether target to each baseline. Then the CPU each process was
 * busy with, so a reader can see what limited a phase, and any errors.
 */
export function renderNetworkText(result: NetworkBenchResult, options: TextOptions = {}): string {
  const tty = options.tty ?? false;
  const dash = tty ? '–' : '-';
  const s = result.settings;
  const names = result.targets.map((t) => t.name);
  const compared = names.filter((n) => !(result.baselines as readonly string[]).includes(n));
  const lines: string[] = [];
  lines.push(`tether bench network: ${s.rounds} round${s.rounds === 1 ? '' : 's'}, targets ${names.join(', ')} (interleaved, order rotated each round)`);
  lines.push(`backends: ${result.backends.description}`);
  lines.push(`connect and reconnect storms ${s.connections} clients, idle hold ${s.idleConnections}, ${s.concurrency} at a time; ping-pong and publish ${s.durationMs / 1000} s each (QoS 1 window ${s.qos1Window}, ${s.payloadBytes}-byte payloads)`);
  lines.push(`machine: ${result.environment.cpus} CPUs, Node ${result.environment.node}${result.environment.haproxy ? `, HAProxy ${result.environment.haproxy}` : ''}; load average at the end ${result.environment.loadavg.map((l) => l.toFixed(2)).join(' ')}`);
  lines.push(`cells: median (min${dash}max) over rounds; ratios: target median / baseline median; ${tty ? '↑/↓' : '(+)/(-)'} = higher/lower is better`);
  lines.push('');

  const header = ['scenario', 'metric', ...names, ...compared.flatMap((t) => result.baselines.map((b) => `${t} / ${b}`))];
  const rows: string[][] = [];
  for (const def of METRICS) {
    if (!s.scenarios.includes(def.scenario)) continue;
    const cells = names.map((name) => cell(result.summary[name]?.[def.scenario]?.[def.key], def, dash));
    if (cells.every((c) => c === '')) continue;
    const ratios = compared.flatMap((t) => result.baselines.map((b) => {
      const r = result.ratios[t]?.[b]?.[def.scenario]?.[def.key];
      return r === undefined ? '' : `${r.toFixed(2)}x`;
    }));
    const arrow = def.better === 'higher' ? (tty ? '↑' : '(+)') : tty ? '↓' : '(-)';
    rows.push([def.scenario, `${def.label}${def.unit && def.unit !== '/s' ? ` (${def.unit})` : ''} ${arrow}`, ...cells, ...ratios]);
  }
  lines.push(...table(header, rows, tty, new Set([0, 1])));

  lines.push('');
  lines.push('CPU busy during the measured parts, median over rounds (1.00 = one core): balancer / load generator / backends');
  const busyRows = names.map((name) => [name, ...s.scenarios.map((sc) => {
    const b = result.busy[name]?.[sc];
    const f = (x: RoundStat | undefined): string => (x ? x.median.toFixed(2) : '-');
    return b ? `${f(b.balancer)} / ${f(b.loadgen)} / ${f(b.backends)}` : '';
  })]);
  lines.push(...table(['target', ...s.scenarios], busyRows, tty, new Set([0])));

  const withBalancer = names.filter((name) => s.scenarios.some((sc) => result.busy[name]?.[sc]?.balancerUser));
  if (withBalancer.length > 0) {
    lines.push('');
    lines.push("Balancer CPU time spent in user space rather than in the kernel's TCP work, median share over rounds");
    const userRows = withBalancer.map((name) => [name, ...s.scenarios.map((sc) => result.busy[name]?.[sc]?.balancerUser?.median.toFixed(2) ?? '')]);
    lines.push(...table(['target', ...s.scenarios], userRows, tty, new Set([0])));
  }

  if (result.stores) {
    lines.push('');
    lines.push('Redis store against the memory store, same run (the connect storm: every key new, one claim each; the reconnect storm: keys cached)');
    const storeRows = Object.entries(result.stores).map(([redis, c]) => {
      const ratio = (sc: string, key: string): string => {
        const r = c.ratios[sc as keyof typeof c.ratios]?.[key];
        return r === undefined ? '' : `${r.toFixed(2)}x`;
      };
      const added = (sc: string, key: string): string => {
        const a = c.added[sc as keyof typeof c.added]?.[key];
        return a === undefined ? '' : `${a >= 0 ? '+' : ''}${a.toFixed(3)}`;
      };
      return [`${redis} / ${c.against}`, ratio('connect', 'rate'), added('connect', 'p99Ms'), ratio('reconnect', 'rate'), added('reconnect', 'p99Ms'), ratio('connect', 'cpuUs')];
    });
    lines.push(...table(['targets', 'connections/s (cold)', 'connect p99 added (ms)', 'reconnects/s (warm)', 'reconnect p99 added (ms)', 'CPU per connection'], storeRows, tty, new Set([0])));
  }

  const errorLines = Object.entries(result.errors).flatMap(([target, per]) => Object.entries(per).map(([sc, e]) => `  ${target} ${sc}: ${e.count} failed operations; first: ${e.first}`));
  if (errorLines.length > 0) lines.push('', 'errors:', ...errorLines);
  if (result.notes.length > 0) lines.push('', ...result.notes.map((n) => `note: ${n}`));
  lines.push('', `done in ${result.elapsedS.toFixed(0)} s`);
  return `${lines.join('\n')}\n`;
}

function cell(stat: RoundStat | undefined, def: MetricDef, dash: string): string {
  if (!stat) return '';
  const f = def.key === 'stickiness' ? (v: number) => v.toFixed(2) : format;
  return stat.values.length === 1 ? f(stat.median) : `${f(stat.median)} (${f(stat.min)}${dash}${f(stat.max)})`;
}

/** Three significant figures: 2.66M / 12.3k / 4,567 / 123 / 12.3 / 1.23 / 0.123. */
export function format(v: number): string {
  const a = Math.abs(v);
  if (a >= 999_500) return `${(v / 1e6).toPrecision(3)}M`;
  if (a >= 10_000) return `${(v / 1e3).toPrecision(3)}k`;
  if (a >= 100) return Math.round(v).toLocaleString('en-US');
  if (a >= 10) return v.toFixed(1);
  if (a >= 1) return v.toFixed(2);
  if (a === 0) return '0';
  return v.toPrecision(3);
}

/** Columns padded to their widest cell; text columns left-aligned, numbers right-aligned. */
function table(header: string[], rows: string[][], tty: boolean, left: Set<number>): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string => cells.map((c, i) => (left.has(i) ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd();
  const rule = widths.map((w) => (tty ? '─' : '-').repeat(w)).join('  ');
  const head = line(header);
  return [tty ? `\x1b[1m${head}\x1b[0m` : head, rule, ...rows.map(line)];
}
