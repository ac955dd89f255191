import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { hasBinary } from '../../test/harness/binaries.ts';
import { runChromium, type ChromiumRun } from '../../test/harness/chromium.ts';
import { loadScenario } from '../src/load-scenario.ts';
import { METRICS, DEFAULT_SCENARIOS as SCENARIOS, typeScriptNode, type NetworkBenchResult, type RoundResult } from '../src/network/index.ts';
import { renderNetworkHtml } from '../src/network/report-html.ts';
import type { Scenario } from '../src/network/metrics.ts';
import type { ScenarioResult } from '../src/network/scenarios.ts';
import { summarize } from '../src/network/summary.ts';
import { renderHtml } from '../src/report/html.ts';
import { runBench } from '../src/run.ts';
import { registry } from './helpers.ts';

/**
 * Both HTML reports (`bench strategies --report`, `bench network --report`) opened in a real
 * headless Chromium (Debian's `chromium`): the page parses, lays out, and every chart has data
 * marks of non-zero size inside its own drawing area. The reports have no script of their own; the
 * test loads a copy with a small probe script appended, which measures the laid-out SVG and writes
 * its findings into a `data-probe` attribute on <body>, read back from `--dump-dom`. A probe that
 * does not run (a script error, a page that did not load) leaves no attribute and fails the test.
 */

// On a laptop without chromium the tests are skipped with the reason in their name; in CI (CI=true) hasBinary throws instead.
const CHROMIUM = hasBinary('chromium');
const missing = CHROMIUM ? '' : ' [skipped: chromium not installed; apt-get install chromium]';
const CLI_COMMAND = fileURLToPath(new URL('../../cli/src/commands/bench-network.ts', import.meta.url));
const SMALL_SCENARIO = fileURLToPath(new URL('../../cli/test/fixtures/bench-small.yaml', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'tether-report-chromium-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const CHROMIUM_LIMIT_MS = 60_000;
const chromium = (args: readonly string[]): Promise<ChromiumRun> => runChromium(['--window-size=1000,2600', ...args], CHROMIUM_LIMIT_MS);

interface ChartProbe {
  readonly title: string;
  readonly width: number;
  readonly height: number;
  /** Bars (rect) and lines (path) with a non-zero laid-out size: the data. */
  readonly bars: number;
  readonly lines: number;
  readonly whiskers: number;
  /** Marks whose laid-out box is not inside the chart's viewBox. */
  readonly outside: number;
  /** Attributes of the chart's elements with NaN, Infinity or undefined in them. */
  readonly badAttributes: readonly string[];
}

interface Probe {
  readonly charts: readonly ChartProbe[];
  readonly errors: readonly string[];
  readonly title: string;
  readonly tables: number;
  readonly dataJson: boolean;
}

/** Collects script errors from the start, then measures every chart once the document is parsed. */
const PROBE_HEAD = `<script>window.__probeErrors = []; addEventListener('error', (e) => window.__probeErrors.push(String(e.message)));</script>`;
const PROBE_BODY = `<script>
(() => {
  const charts = [...document.querySelectorAll('body > svg, body svg[role="img"]')].map((svg) => {
    const box = svg.getBoundingClientRect();
    const vb = svg.viewBox.baseVal;
    const sized = (el) => { const b = el.getBBox(); return b.width > 0 && b.height > 0; };
    const bars = [...svg.querySelectorAll('rect:not(.band)')].filter(sized);
    const lines = [...svg.querySelectorAll('path')].filter((p) => (p.getAttribute('d') || '').startsWith('M') && p.getTotalLength() > 0);
    const outside = [...bars, ...lines].filter((el) => {
      const b = el.getBBox();
      return b.x < vb.x - 0.5 || b.y < vb.y - 0.5 || b.x + b.width > vb.x + vb.width + 0.5 || b.y + b.height > vb.y + vb.height + 0.5;
    }).length;
    const badAttributes = [...svg.querySelectorAll('*')].flatMap((el) => [...el.attributes].filter((a) => /NaN|Infinity|undefined/.test(a.value)).map((a) => el.tagName + ' ' + a.name + '=' + a.value));
    return { title: svg.getAttribute('aria-label'), width: box.width, height: box.height, bars: bars.length, lines: lines.length, whiskers: svg.querySelectorAll('g.whisker').length, outside, badAttributes };
  });
  const data = document.getElementById('bench-data');
  let dataJson = false;
  try { dataJson = data !== null && typeof JSON.parse(data.textContent) === 'object'; } catch {}
  document.body.setAttribute('data-probe', JSON.stringify({ charts, errors: window.__probeErrors, title: document.title, tables: document.querySelectorAll('table').length, dataJson }));
})();
</script>`;

function withProbe(html: string): string {
  expect(html).toContain('<head>');
  expect(html).toContain('</body>');
  return html.replace('<head>', `<head>\n${PROBE_HEAD}`).replace('</body>', `${PROBE_BODY}\n</body>`);
}

function unescapeAttribute(text: string): string {
  return text.replace(/&quot;/g, '"').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&nbsp;/g, '\u00a0').replace(/&#39;/g, "'").replace(/&amp;/g, '&');
}

/** Opens the page (with the probe) in Chromium and returns what the probe found in the rendered DOM. */
async function probe(html: string, name: string): Promise<Probe> {
  const file = join(dir, `${name}.probe.html`);
  writeFileSync(file, withProbe(html));
  const run = await chromium(['--dump-dom', pathToFileURL(file).href]);
  expect(run.timedOut, `chromium did not finish within ${CHROMIUM_LIMIT_MS / 1000} s`).toBe(false);
  expect(run.code, run.stderr.slice(-2000)).toBe(0);
  expect(run.stdout).toMatch(/<\/html>\s*$/);
  const match = /<body[^>]*\sdata-probe="([^"]*)"/.exec(run.stdout);
  expect(match, `the probe did not run; chromium stderr:\n${run.stderr.slice(-2000)}`).not.toBeNull();
  return JSON.parse(unescapeAttribute(match![1]!)) as Probe;
}

/** A screenshot of the page as it is (no probe): a PNG well above the size of a blank page. */
async function screenshot(htmlFile: string, name: string): Promise<void> {
  const png = join(dir, `${name}.png`);
  const run = await chromium([`--screenshot=${png}`, pathToFileURL(htmlFile).href]);
  expect(run.timedOut).toBe(false);
  expect(run.code, run.stderr.slice(-2000)).toBe(0);
  expect(existsSync(png)).toBe(true);
  const bytes = readFileSync(png);
  expect(bytes.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))).toBe(true);
  // A blank 1000×2600 page compresses to a few kB; charts, text and colour take far more.
  expect(statSync(png).size).toBeGreaterThan(30_000);
}

function expectCleanCharts(p: Probe): void {
  expect(p.errors).toEqual([]);
  expect(p.dataJson).toBe(true);
  for (const c of p.charts) {
    expect(c.width, c.title).toBeGreaterThan(300);
    expect(c.height, c.title).toBeGreaterThan(100);
    expect(c.outside, `${c.title}: marks outside the chart`).toBe(0);
    expect(c.badAttributes, c.title).toEqual([]);
  }
}

/** A network result as `runNetworkBench` would return it: two rounds of every scenario, three targets, through the real summary code. */
function syntheticNetworkResult(): NetworkBenchResult {
  const targets = ['tether', 'direct', 'haproxy'];
  // tether slower than haproxy, haproxy slower than direct, rounds a little apart.
  const slowdown: Record<string, number> = { tether: 2.5, direct: 1, haproxy: 1.6 };
  const base: Record<string, number> = {
    rate: 3000, p50Ms: 0.6, p99Ms: 2.2, cpuUs: 300, stickiness: 1, held: 500, rssKiB: 6, p50Us: 90, p99Us: 400, p999Us: 1500,
    qos0Rate: 40_000, qos0CpuUs: 20, qos1Rate: 12_000, qos1CpuUs: 45,
  };
  const rounds: RoundResult[] = [1, 2].map((round) => ({
    round,
    order: round === 1 ? targets : [...targets.slice(1), targets[0]!],
    results: Object.fromEntries(targets.map((target) => [target, Object.fromEntries(SCENARIOS.map((scenario): [Scenario, ScenarioResult] => {
      const metrics: Record<string, number | null> = {};
      for (const def of METRICS.filter((m) => m.scenario === scenario)) {
        if (def.ofBalancer && target === 'direct') {
          metrics[def.key] = null;
          continue;
        }
        const v = base[def.key]!;
        const factor = def.key === 'stickiness' || def.key === 'held' ? 1 : def.better === 'higher' ? 1 / slowdown[target]! : slowdown[target]!;
        metrics[def.key] = v * factor * (def.key === 'stickiness' || def.key === 'held' ? 1 : round === 1 ? 0.9 : 1.1);
      }
      const balancer = target === 'direct' ? null : 0.4;
      return [scenario, { metrics, errors: 0, busy: { balancer, balancerUser: balancer === null ? null : 0.3, backends: 0.2, loadgen: 0.5 } }];
    }))])),
  }));
  const baselines = ['direct', 'haproxy'] as const;
  return {
    settings: { rounds: 2, scenarios: SCENARIOS, connections: 100, idleConnections: 500, concurrency: 4, durationMs: 300, qos1Window: 16, payloadBytes: 64 },
    environment: { node: process.version, cpus: 2, loadavg: [0.5, 0.4, 0.3], clockTicks: 100, haproxy: '2.6.12' },
    backends: { kind: 'responder', description: 'fast responder, 2 ports', addresses: ['127.0.0.1:1', '127.0.0.1:2'] },
    targets: targets.map((name) => ({ name, kind: name })),
    baselines: [...baselines],
    rounds,
    ...summarize(targets, [...baselines], SCENARIOS, rounds),
    notes: ['a note </script><b>x</b>'],
    processes: [],
    elapsedS: 12,
  };
}

/** What the network report must draw for `result`, computed from the result rather than the page. */
function expectedNetworkCharts(result: NetworkBenchResult): { bars: number; whiskers: number }[] {
  const names = result.targets.map((t) => t.name);
  const latency: Record<string, readonly string[]> = { connect: ['p50Ms', 'p99Ms'], reconnect: ['p50Ms', 'p99Ms'], pingpong: ['p50Us', 'p99Us', 'p999Us'] };
  const charts: { bars: number; whiskers: number }[] = [];
  for (const [scenario, keys] of Object.entries(latency)) {
    if (!result.settings.scenarios.includes(scenario as Scenario)) continue;
    const stats = names.flatMap((n) => keys.map((k) => result.summary[n]?.[scenario as Scenario]?.[k])).filter((s) => s !== undefined);
    charts.push({ bars: stats.length, whiskers: stats.filter((s) => s.values.length > 1).length });
  }
  const sticky = names.map((n) => result.summary[n]?.reconnect?.stickiness).filter((s) => s !== undefined);
  if (result.settings.scenarios.includes('reconnect') && sticky.length > 0) charts.push({ bars: sticky.length, whiskers: sticky.filter((s) => s.values.length > 1).length });
  for (const target of names.filter((n) => !(result.baselines as readonly string[]).includes(n))) {
    const ratios = result.baselines.flatMap((b) => METRICS.map((def) => result.ratios[target]?.[b]?.[def.scenario]?.[def.key])).filter((r) => r !== undefined);
    charts.push({ bars: ratios.length, whiskers: 0 });
  }
  return charts;
}

/** `tether bench network ...` in a child process of its own, killed (by PID) if it hangs. */
function runNetworkCli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const [node, ...flags] = typeScriptNode();
  const script = `const { benchNetwork } = await import(${JSON.stringify(CLI_COMMAND)}); await benchNetwork(process.argv.slice(1));`;
  const child = spawn(node!, [...flags, '--input-type=module', '-e', script, '--', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
  const limit = setTimeout(() => child.kill('SIGKILL'), 50_000);
  return new Promise((resolve) =>
    child.once('close', (code) => {
      clearTimeout(limit);
      resolve({ code, stdout, stderr });
    }),
  );
}

describe.skipIf(!CHROMIUM)(`HTML reports in headless Chromium${missing}`, () => {
  it('bench strategies --report: two line charts with a line per chain, two bar charts with a bar per chain and event', async () => {
    const result = await runBench({ scenario: loadScenario(SMALL_SCENARIO), registry: registry(), selectionBatch: 0, memoryClients: 0 });
    const html = renderHtml(result);
    const file = join(dir, 'strategies.html');
    writeFileSync(file, html);
    const p = await probe(html, 'strategies');

    expect(p.title).toBe('tether bench strategies: bench-small');
    expect(p.tables).toBe(3);
    expectCleanCharts(p);
    const chains = result.chains.length;
    const windows = result.windows.length;
    expect(chains).toBe(6);
    expect(windows).toBe(2);
    expect(p.charts.map((c) => c.title)).toEqual([
      'Balance over time: most loaded backend / mean',
      'Balance over time: coefficient of variation',
      'Stickiness per event',
      'Sessions moved per event (black tick: the minimum)',
    ]);
    // A drawn line per chain in each line chart; a bar of non-zero height per chain and window.
    expect(p.charts.slice(0, 2).map((c) => c.lines)).toEqual([chains, chains]);
    expect(p.charts[2]!.bars).toBe(result.chains.flatMap((c) => c.windows).filter((w) => w.stickiness !== undefined && w.stickiness > 0).length);
    expect(p.charts[2]!.bars).toBeGreaterThan(0);
    expect(p.charts[3]!.bars).toBe(result.chains.flatMap((c) => c.windows).filter((w) => w.moved > 0).length);
    expect(p.charts[3]!.bars).toBeGreaterThan(0);

    await screenshot(file, 'strategies');
  }, 90_000);

  it('bench network report: latency bars with min-max whiskers per target, session present, ratios to both baselines', async () => {
    const result = syntheticNetworkResult();
    const html = renderNetworkHtml(result);
    // Self-contained: nothing fetched, no script of its own besides the embedded JSON.
    expect(html).not.toMatch(/<script(?! type="application\/json")/);
    expect(html).not.toMatch(/<link|<img|@import|url\(/);
    expect(html.replace(/xmlns="http:\/\/www\.w3\.org\/2000\/svg"/g, '')).not.toMatch(/https?:\/\//);
    expect(html).not.toContain('<b>x</b>');
    const file = join(dir, 'network.html');
    writeFileSync(file, html);
    const p = await probe(html, 'network');

    expect(p.title).toBe('tether bench network: tether, direct, haproxy');
    expect(p.tables).toBe(2);
    expectCleanCharts(p);
    const expected = expectedNetworkCharts(result);
    // connect, reconnect, ping-pong; session present; tether / direct (no CPU or RSS on the direct path) and tether / haproxy.
    expect(expected.map((c) => c.bars)).toEqual([6, 6, 9, 3, 14 + 21]);
    expect(p.charts.map((c) => ({ bars: c.bars, whiskers: c.whiskers }))).toEqual(expected);
    // Every latency bar has its whisker (two rounds); session present is the same in both rounds, so no spread.
    expect(p.charts.slice(0, 3).every((c) => c.whiskers === c.bars)).toBe(true);
    expect(p.charts[4]!.title).toBe('tether: ratio to each baseline per metric (median / median, log scale)');

    await screenshot(file, 'network');
  }, 90_000);

  it('tether bench network --report FILE.html writes a page that renders: one round against the direct path', async () => {
    const file = join(dir, 'cli-network.html');
    const run = await runNetworkCli(['--rounds', '1', '--scenarios', 'connect,pingpong', '--connections', '40', '--concurrency', '4', '--duration', '0.2', '--baseline', 'direct', '--report', file]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toContain(`report written to ${file}`);
    // The text table still goes to stdout.
    expect(run.stdout).toMatch(/connect\s+connections\/s/);
    const html = readFileSync(file, 'utf8');
    const result = JSON.parse(/<script type="application\/json" id="bench-data">([\s\S]*?)<\/script>/.exec(html)![1]!) as NetworkBenchResult;
    expect(result.targets.map((t) => t.name)).toEqual(['tether', 'direct']);
    const p = await probe(html, 'cli-network');
    expectCleanCharts(p);
    const expected = expectedNetworkCharts(result);
    // connect and ping-pong latency (one round: no whiskers), then tether / direct.
    expect(expected.map((c) => c.bars)).toEqual([4, 6, 7]);
    expect(p.charts.map((c) => ({ bars: c.bars, whiskers: c.whiskers }))).toEqual(expected);
  }, 120_000);
});

describe('tether bench network --report', () => {
  it('refuses a --report that is not an .html file', async () => {
    const run = await runNetworkCli(['--report', join(dir, 'report.txt')]);
    expect(run.code).not.toBe(0);
    expect(run.stderr).toContain('--report must name an .html file');
    expect(existsSync(join(dir, 'report.txt'))).toBe(false);
  }, 60_000);
});
