import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import YAML from 'yaml';
import { startBalancer, stuckTo, type TestBalancer } from '../harness/balancer.ts';
import { TestDnsServer } from '../harness/dns-server.ts';
import { startHaBrokers, type HaAedes } from '../harness/ha-aedes.ts';
import { Cleanup, waitFor, waitForLog } from '../harness/poll.ts';
import { ClientPool } from '../harness/traffic-mqtt-clients.ts';

/**
 * The file provider (a YAML file of backends, rewritten the way consul-template and ConfigMap
 * volumes do: a new file renamed over the old one) and what `tether reload` does with providers:
 * an unchanged provider keeps its product, a changed one is replaced, one that cannot start
 * refuses the reload and the running one goes on. Brokers are aedes (test/harness/ha-aedes.ts),
 * which say which client is connected where.
 */

vi.setConfig({ testTimeout: 60_000, hookTimeout: 30_000 });

const cleanup = new Cleanup();
const clients = new ClientPool();
afterEach(async () => {
  await clients.closeAll();
  await cleanup.run();
});

function tempDir(): string {
  return cleanup.add(mkdtempSync(join(tmpdir(), 'tether-provider-')), (dir) => rmSync(dir, { recursive: true, force: true }));
}

/** Writes `content` next to `file` and renames it over, as tools that render files do. */
function replace(file: string, content: string): void {
  writeFileSync(`${file}.tmp`, content);
  renameSync(`${file}.tmp`, file);
}

const entry = (b: HaAedes) => ({ name: b.id, address: `127.0.0.1:${b.port}` });

async function brokers(n: number): Promise<HaAedes[]> {
  return cleanup.add(await startHaBrokers(n), (list) => Promise.all(list.map((b) => b.close())));
}

describe('file provider', () => {
  it('follows the file: added and removed backends, a bad file keeps the last good list', async () => {
    const [a, b] = (await brokers(2)) as [HaAedes, HaAedes];
    const dir = tempDir();
    const list = join(dir, 'backends.yaml');
    writeFileSync(list, YAML.stringify({ backends: [entry(a)] }));
    const balancer = cleanup.add(await startBalancer({ backends: [], providers: [{ use: 'file', options: { path: list, debounce: '20ms' } }] }), (x) => x.close());
    expect(balancer.server.pool.all().map((x) => [x.id, x.source])).toEqual([[a.id, `file ${list}`]]);
    const onA = await clients.connect(balancer.url, { clientId: 'on-a' });
    expect(a.holds('on-a')).toBe(true);

    replace(list, YAML.stringify([entry(a), { ...entry(b), weight: 5, metadata: { zone: 'b' } }]));
    await waitFor(() => balancer.server.pool.all().length === 2, { what: 'the second backend from the file' });
    expect(balancer.server.pool.get(b.id)?.weight).toBe(5);
    expect(balancer.server.pool.get(b.id)?.metadata).toEqual({ zone: 'b' });

    replace(list, 'backends: [ {address: nope} ]');
    await waitForLog(balancer.logs, { msg: 'backends file is invalid; keeping the last good list' });
    expect(balancer.server.pool.all()).toHaveLength(2);

    replace(list, YAML.stringify([entry(b)]));
    await waitFor(() => balancer.server.pool.all().length === 1, { what: 'the first backend to go' });
    await clients.connect(balancer.url, { clientId: 'after' });
    expect(await stuckTo(balancer, 'after')).toBe(b.id);
    expect(onA.client.connected && a.holds('on-a')).toBe(true);
    expect(balancer.server.pool.get(a.id)?.activeConnections).toBe(1);
    expect(balancer.server.stats.get('file_backends_added')).toBe(1);
    expect(balancer.server.stats.get('file_backends_removed')).toBe(1);

    // Its last connection closes: the backend is forgotten, its stick-table entry is not, and when
    // it comes back under the same name its client goes back to it (a table hit).
    await clients.disconnect(onA.client);
    await waitFor(() => balancer.server.pool.get(a.id) === undefined, { what: `${a.id} to be forgotten` });
    expect(await stuckTo(balancer, 'on-a')).toBe(a.id);
    replace(list, YAML.stringify([entry(b), entry(a)]));
    await waitFor(() => balancer.server.pool.get(a.id) !== undefined, { what: `${a.id} to come back` });
    const hits = balancer.server.stats.get('stick_table_hits');
    await clients.connect(balancer.url, { clientId: 'on-a' });
    expect(a.holds('on-a')).toBe(true);
    expect(balancer.server.stats.get('stick_table_hits')).toBe(hits + 1);
  });

  it('a file that cannot be read at start fails the start with its path', async () => {
    const dir = tempDir();
    await expect(startBalancer({ backends: [], providers: [{ use: 'file', options: { path: join(dir, 'missing.yaml') } }] })).rejects.toThrow(/file.*missing\.yaml/);
  });
});

describe('providers on tether reload', () => {
  it('keeps an unchanged provider, replaces a changed one, and refuses a reload whose provider cannot start', async () => {
    const [a, b] = (await brokers(2)) as [HaAedes, HaAedes];
    const dns = cleanup.add(await TestDnsServer.start(), (s) => s.close());
    dns.setA('a.test', ['127.0.0.1']);
    const dir = tempDir();
    const list = join(dir, 'backends.json');
    writeFileSync(list, JSON.stringify([entry(a)]));
    const config = join(dir, 'tether.yaml');
    const dnsEntry = (options: Record<string, unknown>) => ({ use: 'dns', options: { name: 'a.test', port: b.port, resolvers: [dns.address], interval: '100ms', timeout: '200ms', tries: 1, ...options } });
    const write = (providers: unknown[]): void => writeFileSync(config, YAML.stringify({ backends: [], providers }));
    write([{ use: 'file', options: { path: list } }, dnsEntry({})]);
    const balancer: TestBalancer = cleanup.add(await startBalancer({}, config), (x) => x.close());
    const ids = (): string[] => balancer.server.pool.all().map((x) => x.id).sort();
    expect(ids()).toEqual([a.id, `a.test/127.0.0.1:${b.port}`].sort());

    // Only the dns entry changes (a new name prefix): the file provider's product is kept.
    write([{ use: 'file', options: { path: list } }, dnsEntry({ namePrefix: 'pod-' })]);
    const applied = await balancer.server.reload('test');
    expect(applied.ok).toBe(true);
    expect(applied.changes.some((c) => c.startsWith('providers:'))).toBe(true);
    // Kept, so told to reload (it read its file again); a new product would not have been.
    expect(balancer.server.stats.get('file_reads')).toBe(1);
    expect(ids()).toEqual([a.id, `pod-127.0.0.1:${b.port}`].sort());

    // A provider that refuses to start: the reload fails with its reason, the running set stays.
    write([{ use: 'file', options: { path: list } }, dnsEntry({ name: 'gone.test', onUnresolved: 'refuse' })]);
    const refused = await balancer.server.reload('test');
    expect(refused.ok).toBe(false);
    expect(refused.errors.join('\n')).toMatch(/dns gone\.test:\d+ gave no usable record at start \(onUnresolved: refuse\)/);
    expect(ids()).toEqual([a.id, `pod-127.0.0.1:${b.port}`].sort());

    // Dropping the providers: their backends leave the pool.
    writeFileSync(config, YAML.stringify({ backends: [`static=127.0.0.1:${a.port}`] }));
    expect((await balancer.server.reload('test')).ok).toBe(true);
    expect(ids()).toEqual(['static']);
  });
});
