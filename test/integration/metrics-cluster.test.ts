import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { killAll, startTether, type RunningTether } from '../../cli/test/helpers/cli.ts';
import { closeAllClients, connectClient, disconnect } from '../../cli/test/helpers/mqtt.ts';
import { startHaBrokers, type HaAedes } from '../harness/ha-aedes.ts';
import { waitFor } from '../harness/poll.ts';
import { scrapeOk, type Scrape } from '../harness/prometheus.ts';

/**
 * `tether start --workers 2 --metrics-listen`: one scrape of the primary gives the sum over the
 * workers. Round robin makes both workers serve clients.
 */

const T = 90_000;
const CLIENTS = 10;

let brokers: HaAedes[];
let tether: RunningTether;

beforeAll(async () => {
  brokers = await startHaBrokers(2);
  tether = await startTether(['--workers', '2', '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0', '--metrics-listen', '127.0.0.1:0', ...brokers.flatMap((b) => ['--backend', b.spec])], {
    timeoutMs: 30_000,
    env: { TETHER_CLUSTER_SCHEDULING: 'rr' },
  });
}, T);

afterAll(async () => {
  await closeAllClients();
  await killAll();
  await Promise.all(brokers.map((b) => b.close()));
});

describe('metrics with --workers 2', () => {
  it('one scrape of the primary sums the workers\' counters, on the metrics listener and the admin API', async () => {
    const metricsUrl = String(tether.listening.metrics);
    expect(metricsUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    const closedLines = (): number => tether.logs.filter((l) => l.msg === 'connection closed').length;
    for (let i = 0; i < CLIENTS; i++) await disconnect((await connectClient(tether.url, { clientId: `mc-${i}`, clean: true })).client);
    await waitFor(() => closedLines() >= CLIENTS, { what: `${CLIENTS} connection closed lines` });
    // Both workers served clients: each close line names its worker.
    const workers = new Set(tether.logs.filter((l) => l.msg === 'connection closed').map((l) => l.worker));
    expect(workers.size).toBe(2);

    const check = (s: Scrape): void => {
      expect(s.value('tether_workers')).toBe(2);
      expect(s.value('tether_connections_accepted_total', { listener: 'main' })).toBe(CLIENTS);
      expect(s.sum('tether_backend_connections_total')).toBe(CLIENTS);
      expect(s.value('tether_stick_table_misses_total')).toBe(CLIENTS);
      expect(s.histogram('tether_sniff_duration_seconds', { listener: 'main' })?.count).toBe(CLIENTS);
      expect(s.sum('tether_backend_active_connections')).toBe(0);
      // Gauges the workers share are not doubled.
      expect(s.value('tether_backend_weight', { backend: 'b1' })).toBe(1);
      expect(s.value('tether_backend_state', { backend: 'b1', state: 'ready' })).toBe(2);
      expect(s.value('tether_backend_up', { backend: 'b1' })).toBe(1);
      expect(s.value('tether_build_info')).toBe(1);
      // The whole process tree: the primary and both workers.
      expect(s.value('process_resident_memory_bytes')).toBeGreaterThan(3 * 20 * 1024 * 1024);
    };
    check(await scrapeOk(metricsUrl));
    check(await scrapeOk(`http://${tether.admin!}/metrics`));

    // A live connection on one worker shows in the sum.
    const held = await connectClient(tether.url, { clientId: 'mc-held', clean: true });
    const s = await waitFor(async () => {
      const x = await scrapeOk(metricsUrl);
      return x.sum('tether_backend_active_connections') === 1 && x;
    }, { what: 'one active connection in the sum' });
    expect(s.value('tether_connections_accepted_total', { listener: 'main' })).toBe(CLIENTS + 1);
    await disconnect(held.client);
  }, T);
});
