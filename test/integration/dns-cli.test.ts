import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { killAll, runTether, startTether } from '../../cli/test/helpers/cli.ts';
import { closeAllClients, connectClient } from '../../cli/test/helpers/mqtt.ts';
import { TestDnsServer } from '../harness/dns-server.ts';
import { startHaBrokers, type HaAedes } from '../harness/ha-aedes.ts';
import { Cleanup, waitFor } from '../harness/poll.ts';

/**
 * The discovery quick start as a user runs it: `tether start --backend-srv NAME --resolver
 * HOST:PORT`, then `tether backend list`; and `--workers 2`, where each worker resolves on its own
 * and the admin API (the primary) shows the union, a backend some workers do not have yet listed
 * with the workers that have it.
 */

const T = 60_000;
const cleanup = new Cleanup();
afterEach(async () => {
  await closeAllClients();
  await killAll();
  await cleanup.run();
});

interface BackendRow {
  id: string;
  source: string;
  weight: number;
  workers?: number[];
}

async function setup(n: number): Promise<{ dns: TestDnsServer; brokers: HaAedes[] }> {
  const dns = cleanup.add(await TestDnsServer.start(), (s) => s.close());
  const brokers = cleanup.add(await startHaBrokers(n), (list) => Promise.all(list.map((b) => b.close())));
  brokers.forEach((b, i) => dns.setA(`b${i}.test`, ['127.0.0.1']));
  return { dns, brokers };
}

const srv = (brokers: readonly HaAedes[]) => brokers.map((b, i) => ({ target: `b${i}.test`, port: b.port, weight: i + 1 }));

async function backendList(admin: string): Promise<{ text: string; rows: BackendRow[] }> {
  const text = await runTether(['backend', 'list', '--admin', admin]);
  const json = await runTether(['backend', 'list', '--admin', admin, '--json']);
  expect(text.stderr + json.stderr).toBe('');
  return { text: text.stdout, rows: JSON.parse(json.stdout) as BackendRow[] };
}

describe('tether start --backend-srv', () => {
  it('takes the SRV records from the given resolver; backend list shows where each backend came from', async () => {
    const { dns, brokers } = await setup(2);
    dns.setSrv('_mqtt._tcp.test', srv(brokers));
    const port = brokers[0]!.port;
    const tether = await startTether(['--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0', '--backend-dns', `b0.test:${port}`, '--backend-srv', '_mqtt._tcp.test', '--resolver', dns.address]);
    const { text, rows } = await backendList(tether.admin!);
    expect(rows.map((r) => [r.id, r.source, r.weight])).toEqual([
      [`b0.test/127.0.0.1:${port}`, `dns b0.test:${port}`, 1],
      [`_mqtt._tcp.test/b0.test:${port}`, 'dns SRV _mqtt._tcp.test', 1],
      [`_mqtt._tcp.test/b1.test:${brokers[1]!.port}`, 'dns SRV _mqtt._tcp.test', 2],
    ]);
    expect(text).toContain('source=dns SRV _mqtt._tcp.test');
    const { connack } = await connectClient(tether.url, { clientId: 'via-srv' });
    expect(connack.returnCode).toBe(0);
    await waitFor(() => brokers.some((b) => b.holds('via-srv')), { what: 'a broker to hold via-srv' });
  }, T);

  it('--resolver without a DNS backend, and --backend-dns without a port, are usage errors', async () => {
    const r = await runTether(['start', '--listen', '127.0.0.1:0', '--resolver', '127.0.0.1:53']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--resolver sets the DNS servers of --backend-dns and --backend-srv');
    const noPort = await runTether(['start', '--listen', '127.0.0.1:0', '--backend-dns', 'emqx.example']);
    expect(noPort.code).toBe(2);
    expect(noPort.stderr).toContain('--backend-dns takes NAME:PORT (e.g. emqx.example:1883); got "emqx.example"');
  }, T);
});

describe('tether start --workers 2 with a DNS provider', () => {
  it('each worker resolves on its own: a new record reaches every worker', async () => {
    const { dns, brokers } = await setup(3);
    dns.setSrv('_mqtt._tcp.test', srv(brokers.slice(0, 2)));
    const dir = cleanup.add(mkdtempSync(join(tmpdir(), 'tether-dns-cli-')), (d) => rmSync(d, { recursive: true, force: true }));
    const file = join(dir, 'tether.yaml');
    writeFileSync(file, YAML.stringify({
      providers: [{ use: 'dns', options: { name: '_mqtt._tcp.test', type: 'SRV', resolvers: [dns.address], interval: '100ms', minInterval: '50ms', timeout: '200ms', tries: 1 } }],
    }));
    const tether = await startTether(['-c', file, '--workers', '2', '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0'], { timeoutMs: 30_000 });
    expect((await backendList(tether.admin!)).rows).toHaveLength(2);
    dns.setSrv('_mqtt._tcp.test', srv(brokers));
    const third = `_mqtt._tcp.test/b2.test:${brokers[2]!.port}`;
    const rows = await waitFor(async () => {
      const { rows: now } = await backendList(tether.admin!);
      return now.length === 3 && now.every((r) => r.workers === undefined) && now;
    }, { what: 'both workers to have the third backend', timeoutMs: 20_000, intervalMs: 100 });
    expect(rows.find((r) => r.id === third)?.source).toBe('dns SRV _mqtt._tcp.test');
  }, T);
});
