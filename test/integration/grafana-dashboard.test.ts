import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { closeAllClients, connectClient, disconnect } from '../../cli/test/helpers/mqtt.ts';
import { startBalancer } from '../harness/balancer.ts';
import { skipReason } from '../harness/binaries.ts';
import { startHaBrokers } from '../harness/ha-aedes.ts';
import { Cleanup, waitFor } from '../harness/poll.ts';
import { scrapeOk } from '../harness/prometheus.ts';

/**
 * examples/grafana/tether.json: valid JSON, every query valid PromQL (checked by Prometheus's own
 * promtool), and every metric it queries present in a real scrape of a balancer that has served
 * clients.
 */

const DASHBOARD = new URL('../../examples/grafana/tether.json', import.meta.url);
const missing = skipReason('promtool');
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
const asPromQL = (expr: string): string => expr.replaceAll('$__rate_interval', '1m').replaceAll('$instance', '.*');

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

  it('queries only metrics that a real scrape has', async () => {
    const brokers = cleanup.add(await startHaBrokers(2), (list) => Promise.all(list.map((b) => b.close())));
    const b = cleanup.add(await startBalancer({ admin: '127.0.0.1:0', backends: brokers.map((x) => x.spec) }), (x) => x.close());
    // A miss, a hit, then a redispatch: the stick table's counters exist once counted.
    await disconnect((await connectClient(b.url, { clientId: 'dash-1', clean: false })).client);
    await disconnect((await connectClient(b.url, { clientId: 'dash-1', clean: false })).client);
    const owner = await waitFor(async () => (await b.server.strategies.tables())[0]?.entries.find((e) => e.key === 'dash-1')?.backend, { what: 'the entry of dash-1' });
    b.server.pool.setAdminState(owner, 'drain');
    await disconnect((await connectClient(b.url, { clientId: 'dash-1', clean: false })).client);
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
});
