import { once } from 'node:events';
import { readdirSync } from 'node:fs';
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Scrape } from '../../../test/harness/prometheus.ts';
import { waitFor } from '../../../test/harness/poll.ts';
import { BackendPool } from '../../src/backend/backend-pool.ts';
import { TetherMetrics } from '../../src/metrics/tether-metrics.ts';
import type { TableView } from '../../src/plugin.ts';
import { Stats } from '../../src/stats.ts';
import { capturingLogger } from '../fixtures.ts';

function pool(): BackendPool {
  return new BackendPool([
    { id: 'b1', host: '127.0.0.1', port: 1, weight: 1, state: 'ready', sendProxy: 'none' },
    { id: 'b2', host: '127.0.0.1', port: 2, weight: 3, state: 'ready', sendProxy: 'none' },
  ]);
}

const table = (name: string, used: number, size = 100): TableView => ({ name, type: 'string', size, used, entries: [] });

function metrics(overrides: { tables?: () => Promise<readonly TableView[]>; pool?: BackendPool; stats?: Stats } = {}): { m: TetherMetrics; pool: BackendPool; stats: Stats; lines: Record<string, unknown>[] } {
  const { log, lines } = capturingLogger('debug');
  const p = overrides.pool ?? pool();
  const stats = overrides.stats ?? new Stats();
  const m = new TetherMetrics({ pool: p, stats, log, tables: overrides.tables ?? (async () => [table('stick-table', 2)]) });
  return { m, pool: p, stats, lines };
}

async function scrapeOf(m: TetherMetrics): Promise<Scrape> {
  const { contentType, body } = await m.exposition();
  expect(contentType).toBe('text/plain; version=0.0.4; charset=utf-8');
  return new Scrape(body);
}

describe('TetherMetrics', () => {
  it('counts what the listener and backend meters were told, by label, as Prometheus counters', async () => {
    const { m } = metrics();
    const main = m.listener('main');
    main.accept();
    main.accept();
    main.accept();
    m.listener('tls').accept();
    main.reject('sniff_timeout');
    m.listener('main').reject('sniff_timeout');
    main.reject('not_mqtt');
    main.sniffed(0.3);
    main.sniffed(12);
    const b1 = m.backend('b1');
    b1.connected(0.2);
    b1.connectFailed();
    b1.refusedWith(5);
    b1.refusedWith(0x86);
    b1.stickinessChecks += 2;
    b1.stickinessMisses++;
    const s = await scrapeOf(m);
    expect(s.type('tether_connections_accepted_total')).toBe('COUNTER');
    expect(s.value('tether_connections_accepted_total', { listener: 'main' })).toBe(3);
    expect(s.value('tether_connections_accepted_total', { listener: 'tls' })).toBe(1);
    expect(s.value('tether_connections_rejected_total', { listener: 'main', reason: 'sniff_timeout' })).toBe(2);
    expect(s.value('tether_connections_rejected_total', { listener: 'main', reason: 'not_mqtt' })).toBe(1);
    expect(s.type('tether_sniff_duration_seconds')).toBe('HISTOGRAM');
    const sniff = s.histogram('tether_sniff_duration_seconds', { listener: 'main' })!;
    expect(sniff.count).toBe(2);
    // Milliseconds in, seconds out: 0.3 ms in the 0.0005 s bucket, 12 ms only from 0.025 s on.
    expect(sniff.sum).toBeCloseTo(0.0123, 6);
    const buckets = (await m.json()).find((f) => f.name === 'tether_sniff_duration_seconds')!.values
      .filter((v) => (v as { metricName?: string }).metricName === 'tether_sniff_duration_seconds_bucket');
    const le = (bound: number): number | undefined => buckets.find((v) => v.labels.le === bound)?.value;
    expect([le(0.0005), le(0.01), le(0.025)]).toEqual([1, 1, 2]);
    expect(s.histogram('tether_upstream_connect_duration_seconds', { backend: 'b1' })).toMatchObject({ count: 1 });
    expect(s.value('tether_upstream_connect_failures_total', { backend: 'b1' })).toBe(1);
    expect(s.value('tether_connack_refused_total', { backend: 'b1', code: '5', reason: 'not_authorized' })).toBe(1);
    expect(s.value('tether_connack_refused_total', { backend: 'b1', code: '134', reason: 'bad_user_name_or_password' })).toBe(1);
    expect(s.value('tether_stickiness_checks_total', { backend: 'b1' })).toBe(2);
    expect(s.value('tether_stickiness_misses_total', { backend: 'b1' })).toBe(1);
  });

  it('shows every backend of the pool, and each listener it was told of, at 0 before any connection', async () => {
    const { m } = metrics();
    m.listener('main');
    const s = await scrapeOf(m);
    expect(s.value('tether_connections_accepted_total', { listener: 'main' })).toBe(0);
    expect(s.histogram('tether_sniff_duration_seconds', { listener: 'main' })).toEqual({ count: 0, sum: 0 });
    for (const backend of ['b1', 'b2']) {
      expect(s.value('tether_backend_connections_total', { backend })).toBe(0);
      expect(s.value('tether_stickiness_misses_total', { backend })).toBe(0);
      expect(s.histogram('tether_upstream_connect_duration_seconds', { backend })).toEqual({ count: 0, sum: 0 });
    }
  });

  it('reads backend state, health and weight from the pool at each scrape, so runtime changes show', async () => {
    const { m, pool: p } = metrics();
    let s = await scrapeOf(m);
    expect(s.value('tether_backend_up', { backend: 'b1' })).toBe(1);
    expect(s.value('tether_backend_weight', { backend: 'b2' })).toBe(3);
    expect(s.value('tether_backend_state', { backend: 'b1', state: 'ready' })).toBe(1);
    expect(s.value('tether_backend_state', { backend: 'b1', state: 'drain' })).toBe(0);
    p.setAdminState('b1', 'drain');
    p.setHealthy('b2', false);
    s = await scrapeOf(m);
    expect(s.value('tether_backend_state', { backend: 'b1', state: 'drain' })).toBe(1);
    expect(s.value('tether_backend_state', { backend: 'b1', state: 'ready' })).toBe(0);
    expect(s.value('tether_backend_state', { backend: 'b2', state: 'down' })).toBe(1);
    expect(s.value('tether_backend_up', { backend: 'b2' })).toBe(0);
  });

  it('counts health checks by backend and result', async () => {
    const { m } = metrics();
    m.healthCheck('b1', true);
    m.healthCheck('b1', true);
    m.healthCheck('b1', false);
    const s = await scrapeOf(m);
    expect(s.value('tether_health_checks_total', { backend: 'b1', result: 'pass' })).toBe(2);
    expect(s.value('tether_health_checks_total', { backend: 'b1', result: 'fail' })).toBe(1);
  });

  it('exports plugin counters kept through StatsScope by plugin name, as they appear', async () => {
    const { m, stats } = metrics();
    const scope = stats.scope('stick_table');
    scope.inc('hits');
    let s = await scrapeOf(m);
    expect(s.value('tether_stick_table_hits_total')).toBe(1);
    expect(s.has('tether_stick_table_store_errors_total')).toBe(false);
    scope.inc('hits', 4);
    scope.inc('store_errors');
    stats.scope('acme_geo').inc('lookups');
    s = await scrapeOf(m);
    expect(s.value('tether_stick_table_hits_total')).toBe(5);
    expect(s.type('tether_stick_table_store_errors_total')).toBe('COUNTER');
    expect(s.value('tether_stick_table_store_errors_total')).toBe(1);
    expect(s.value('tether_acme_geo_lookups_total')).toBe(1);
    // A plugin that counts down does not break the scrape.
    stats.scope('acme_geo').inc('lookups', -5);
    s = await scrapeOf(m);
    expect(s.value('tether_acme_geo_lookups_total')).toBe(0);
    expect(s.value('tether_stick_table_hits_total')).toBe(5);
    // Still under GET /stats, by the same names as before.
    expect(stats.snapshot()).toMatchObject({ stick_table_hits: 5, stick_table_store_errors: 1 });
  });

  it('shows each table\'s entries and size; two tables of one name are told apart; a table that cannot be read is left out, with a warning', async () => {
    let fail = false;
    const { m, lines } = metrics({ tables: async () => {
      if (fail) throw new Error('store unreachable');
      return [table('stick-table', 7, 1000), table('stick-table', 2)];
    } });
    let s = await scrapeOf(m);
    expect(s.value('tether_table_entries', { table: 'stick-table' })).toBe(7);
    expect(s.value('tether_table_size', { table: 'stick-table' })).toBe(1000);
    expect(s.value('tether_table_entries', { table: 'stick-table#2' })).toBe(2);
    fail = true;
    s = await scrapeOf(m);
    expect(s.series('tether_table_entries')).toEqual([]);
    expect(s.value('tether_backend_weight', { backend: 'b1' })).toBe(1);
    expect(lines.some((l) => l.level === 40 && /could not read the strategies' tables/.test(String(l.msg)) && /store unreachable/.test(String(l.err)))).toBe(true);
  });

  it('has the process metrics and tether_build_info, and one registry per balancer', async () => {
    const a = metrics().m;
    const b = metrics().m;
    a.listener('main').accept();
    const [sa, sb] = [await scrapeOf(a), await scrapeOf(b)];
    expect(sa.value('tether_connections_accepted_total', { listener: 'main' })).toBe(1);
    expect(sb.value('tether_connections_accepted_total', { listener: 'main' })).toBeUndefined();
    for (const s of [sa, sb]) {
      expect(s.value('tether_build_info', { node: process.version })).toBe(1);
      expect(s.series('tether_build_info')[0]!.labels.version).toMatch(/^\d+\.\d+\.\d+/);
      expect(s.value('process_resident_memory_bytes')).toBeGreaterThan(0);
      expect(s.has('nodejs_eventloop_lag_seconds')).toBe(true);
      // Those that walk every handle at each scrape are left out; open descriptors are listed off the event loop.
      expect(s.has('nodejs_active_handles')).toBe(false);
      expect(s.has('nodejs_active_resources_total')).toBe(false);
    }
    // This process's descriptors, counted the way the kernel lists them.
    expect(sa.value('process_open_fds')).toBeGreaterThan(0);
    expect(Math.abs(sa.value('process_open_fds')! - readdirSync('/proc/self/fd').length)).toBeLessThan(5);
  });
});

describe('bytes by backend', () => {
  let server: Server;
  let peers: Socket[];
  beforeEach(async () => {
    peers = [];
    server = createServer((s) => peers.push(s));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
  });
  afterEach(async () => {
    for (const s of peers) s.destroy();
    await new Promise((resolve) => server.close(resolve));
  });

  /** A connected client socket (the balancer's side of a client connection) and its peer. */
  async function pair(): Promise<{ client: Socket; peer: Socket }> {
    const client = connect((server.address() as AddressInfo).port, '127.0.0.1');
    await once(client, 'connect');
    const peer = await waitFor(() => peers[peers.length - 1], { what: 'the accepted socket' });
    return { client, peer };
  }

  it('shows a live connection\'s bytes as they flow, and counts them once more after it closes', async () => {
    const { m } = metrics();
    const meter = m.backend('b1');
    const { client, peer } = await pair();
    meter.opened(client);
    peer.write(Buffer.alloc(100));
    client.write(Buffer.alloc(40));
    await waitFor(() => client.bytesRead === 100, { what: '100 bytes read' });
    let s = await scrapeOf(m);
    expect(s.value('tether_backend_active_connections', { backend: 'b1' })).toBe(1);
    expect(s.value('tether_backend_connections_total', { backend: 'b1' })).toBe(1);
    expect(s.value('tether_backend_bytes_in_total', { backend: 'b1' })).toBe(100);
    expect(s.value('tether_backend_bytes_out_total', { backend: 'b1' })).toBe(40);
    peer.write(Buffer.alloc(50));
    await waitFor(() => client.bytesRead === 150, { what: '150 bytes read' });
    s = await scrapeOf(m);
    expect(s.value('tether_backend_bytes_in_total', { backend: 'b1' })).toBe(150);
    client.destroy();
    meter.closed(client, client.bytesRead, client.bytesWritten);
    s = await scrapeOf(m);
    expect(s.value('tether_backend_active_connections', { backend: 'b1' })).toBe(0);
    expect(s.value('tether_backend_bytes_in_total', { backend: 'b1' })).toBe(150);
    expect(s.value('tether_backend_bytes_out_total', { backend: 'b1' })).toBe(40);
  });
});
