import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { closeAllClients, connectClient, disconnect } from '../../cli/test/helpers/mqtt.ts';
import { startBalancer, type TestBalancer } from '../harness/balancer.ts';
import { skipReason } from '../harness/binaries.ts';
import { startHaBrokers } from '../harness/ha-aedes.ts';
import { Cleanup, waitFor } from '../harness/poll.ts';
import { scrapeOk } from '../harness/prometheus.ts';
import { startPrometheus } from '../harness/prometheus-server.ts';

/**
 * examples/grafana/tether.json: valid JSON, every query valid PromQL (checked by Prometheus's own
 * promtool), and every metric it queries present in a real scrape of a balancer that has served
 * clients.
 */

const DASHBOARD = new URL('../../examples/grafana/tether.json', import.meta.url);
const missing = skipReason('promtool') + skipReason('prometheus');
const cleanup = new Cleanup();
afterEach(async () => {
  await closeAllClients();
  await cleanup.run();
});

interface Panel {
  readonly title?: string;
  readonly targets?: readonly { readonly expr?: string }[];
  readonly panels?: readonly Panel[];
}

function expressions(): { title: string; expr: string }[] {
  const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { panels: Panel[] };
  const all: { title: string; expr: string }[] = [];
  const walk = (panels: readonly Panel[]): void => {
    for (const p of panels) {
      for (const t of p.targets ?? []) if (t.expr) all.push({ title: p.title ?? '', expr: t.expr });
      walk(p.panels ?? []);
    }
  };
  walk(dashboard.panels);
  return all;
}

/** Grafana's variables as Prometheus would see them once Grafana has filled them in. */
const asPromQL = (expr: string, rateInterval = '1m'): string => expr.replaceAll('$__rate_interval', rateInterval).replaceAll('$instance', '.*');

/**
 * Queries that have no series until something goes wrong (a rejection, a refusal, a failed
 * health check); every other one must answer with data.
 */
const UNTIL_TROUBLE = ['tether_connections_rejected_total', 'tether_connack_refused_total', 'tether_health_checks_total'];

describe(`examples/grafana/tether.json${missing}`, () => {
  it('is a dashboard whose every query is valid PromQL', () => {
    const exprs = expressions();
    expect(exprs.length).toBeGreaterThan(15);
    if (missing) return;
    const dir = mkdtempSync(join(tmpdir(), 'tether-dashboard-'));
    try {
      const rules = join(dir, 'rules.yaml');
      // Each query as a recording rule: promtool parses and checks them all.
      writeFileSync(rules, JSON.stringify({ groups: [{ name: 'dashboard', rules: exprs.map((e, i) => ({ record: `dashboard:query_${i}`, expr: asPromQL(e.expr) })) }] }));
      const out = execFileSync('promtool', ['check', 'rules', rules], { encoding: 'utf8' });
      expect(out).toMatch(new RegExp(`SUCCESS: ${exprs.length} rules found`));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  async function balancer(): Promise<TestBalancer> {
    const brokers = cleanup.add(await startHaBrokers(2), (list) => Promise.all(list.map((b) => b.close())));
    return cleanup.add(await startBalancer({ admin: '127.0.0.1:0', 'metrics.listen': '127.0.0.1:0', backends: brokers.map((x) => x.spec) }), (x) => x.close());
  }

  /** Clients that make the balancer count a miss, a hit (its broker had the session) and a redispatch. */
  async function serve(b: TestBalancer): Promise<void> {
    const first = await connectClient(b.url, { clientId: 'dash-1', clean: false });
    await first.client.subscribeAsync('d/#', { qos: 1 });
    await disconnect(first.client);
    const again = await connectClient(b.url, { clientId: 'dash-1', clean: false });
    expect(again.connack.sessionPresent).toBe(true);
    await disconnect(again.client);
    const owner = await waitFor(async () => (await b.server.strategies.tables())[0]?.entries.find((e) => e.key === 'dash-1')?.backend, { what: 'the entry of dash-1' });
    b.server.pool.setAdminState(owner, 'drain');
    await disconnect((await connectClient(b.url, { clientId: 'dash-1', clean: false })).client);
    await waitFor(() => b.server.stats.get('connections_active') === 0, { what: 'the three connections closed' });
  }

  it('queries only metrics that a real scrape has', async () => {
    const b = await balancer();
    await serve(b);
    const scrape = await scrapeOk(`http://127.0.0.1:${b.server.adminAddress!.port}/metrics`);
    const used = new Set(expressions().flatMap((e) => [...e.expr.matchAll(/\b((?:tether|process|nodejs)_[a-z0-9_]+)\b/g)].map((m) => m[1]!)));
    expect(used.size).toBeGreaterThan(15);
    for (const name of used) {
      // A histogram's series are NAME_bucket, NAME_sum and NAME_count under the family NAME.
      const family = scrape.has(name) ? name : name.replace(/_(bucket|sum|count)$/, '');
      expect(scrape.has(family), `${name} is queried by the dashboard but not in the scrape`).toBe(true);
      if (family !== name) expect(scrape.type(family)).toBe('HISTOGRAM');
    }
  });

  it.skipIf(missing)('answers every query with data from a real Prometheus server scraping a balancer', async () => {
    const b = await balancer();
    const prometheus = cleanup.add(await startPrometheus([`127.0.0.1:${b.server.metricsAddress!.port}`]), (p) => p.stop());
    // Scraped before and after the clients, so that rates over the window see them.
    await waitFor(async () => (await prometheus.query('tether_build_info')).length === 1, { what: 'a first scrape of the balancer', timeoutMs: 20_000, intervalMs: 200 });
    await serve(b);
    await waitFor(async () => ((await prometheus.query('sum(rate(tether_connections_accepted_total[30s]))'))[0]?.value ?? 0) > 0, { what: 'a scrape after the clients', timeoutMs: 20_000, intervalMs: 200 });
    expect((await prometheus.query('sum(tether_connections_accepted_total)'))[0]?.value).toBe(3);
    for (const { title, expr } of expressions()) {
      const samples = await prometheus.query(asPromQL(expr, '30s'));
      if (UNTIL_TROUBLE.some((name) => expr.includes(name))) continue;
      expect(samples.length, `"${title}": ${expr}`).toBeGreaterThan(0);
    }
    // What the stickiness panel shows: one check on the backend that had the session, no miss.
    const ratio = await prometheus.query(asPromQL(expressions().find((e) => e.title.startsWith('Stickiness miss ratio'))!.expr, '30s'));
    expect(ratio.filter((s) => !Number.isNaN(s.value)).map((s) => s.value)).toEqual([0]);
  });
});
