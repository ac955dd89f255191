import type { MqttClient } from 'mqtt';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { startBalancer, stuckTo, tableEntries, type TestBalancer } from '../harness/balancer.ts';
import { skipReason } from '../harness/binaries.ts';
import { TestDnsServer } from '../harness/dns-server.ts';
import { freePort } from '../harness/free-port.ts';
import { startMosquitto, type Mosquitto } from '../harness/mosquitto.ts';
import { Cleanup, logLines, waitFor, waitForLog } from '../harness/poll.ts';
import { connectBytes } from '../harness/raw-mqtt-client.ts';
import { ClientPool } from '../harness/traffic-mqtt-clients.ts';

/**
 * Backends from DNS, with a real authoritative DNS server on loopback (test/harness/dns-server.ts)
 * whose records each test changes while the balancer runs, and Debian's mosquitto as brokers. A
 * records give every broker the same port, so brokers listen on 127.0.0.2, 127.0.0.3 (loopback).
 * The provider re-resolves every 100 ms; the tests wait for what it did (a log line, a counter),
 * never for a time.
 */

vi.setConfig({ testTimeout: 60_000, hookTimeout: 30_000 });

const skip = skipReason('mosquitto');
const cleanup = new Cleanup();
const clients = new ClientPool();
afterEach(async () => {
  await clients.closeAll();
  await cleanup.run();
});

/** Health checks every 50 ms; two passes bring a new backend up. */
const FAST_TCP_CHECK = { 'healthCheck.type': 'tcp', 'healthCheck.interval': '50ms', 'healthCheck.timeout': '1s', 'healthCheck.rise': 2, 'healthCheck.fall': 2 };
const FAST_DNS = { interval: '100ms', minInterval: '50ms', retry: '100ms', timeout: '200ms', tries: 1 };

async function dnsServer(): Promise<TestDnsServer> {
  return cleanup.add(await TestDnsServer.start(), (s) => s.close());
}

async function mosquitto(host: string, port?: number): Promise<Mosquitto> {
  return cleanup.add(await startMosquitto({ host, ...(port ? { port } : {}) }), (m) => m.stop());
}

async function balancer(providers: unknown[], overrides: Record<string, unknown> = {}): Promise<TestBalancer> {
  return cleanup.add(await startBalancer({ backends: [], providers, ...overrides }), (b) => b.close());
}

async function connect(b: TestBalancer, clientId: string): Promise<MqttClient> {
  const { client, connack } = await clients.connect(b.url, { clientId, clean: true });
  expect(connack.returnCode, clientId).toBe(0);
  return client;
}

const counter = (b: TestBalancer, name: string): number => b.server.stats.get(name);

/** Waits until the provider has answered `n` more resolutions (or failures) than now. */
async function resolutions(b: TestBalancer, n: number, name = 'dns_resolutions'): Promise<void> {
  const start = counter(b, name);
  await waitFor(() => counter(b, name) >= start + n, { what: `${n} more ${name}` });
}

describe.skipIf(skip !== '')(`DNS A records${skip}`, () => {
  it('a broker added takes new clients once its health check passes; a broker removed takes none and keeps its live clients', async () => {
    const dns = await dnsServer();
    const port = await freePort();
    const m1 = await mosquitto('127.0.0.2', port);
    dns.setA('brokers.test', ['127.0.0.2']);
    const b = await balancer([{ use: 'dns', options: { name: 'brokers.test', port, resolvers: [dns.address], hold: '0s', ...FAST_DNS } }], FAST_TCP_CHECK);
    const one = `brokers.test/127.0.0.2:${port}`;
    const two = `brokers.test/127.0.0.3:${port}`;
    expect(b.server.pool.all().map((x) => [x.id, x.source])).toEqual([[one, `dns brokers.test:${port}`]]);
    await connect(b, 'first');
    expect(await stuckTo(b, 'first')).toBe(one);

    // The record comes before the broker: the backend is added, but down until its check passes.
    dns.setA('brokers.test', ['127.0.0.2', '127.0.0.3']);
    await waitForLog(b.logs, { msg: 'backends changed' });
    expect(b.server.pool.get(two)?.state).toBe('down');
    expect(counter(b, 'dns_backends_added')).toBe(1);
    for (const id of ['early-1', 'early-2']) {
      await connect(b, id);
      expect(await stuckTo(b, id)).toBe(one);
    }
    await mosquitto('127.0.0.3', port);
    await waitFor(() => b.server.pool.get(two)?.state === 'ready', { what: `${two} to pass its health check` });
    // least-connections: the new broker has none, so it takes the next clients.
    const onTwo = [await connect(b, 'late-1'), await connect(b, 'late-2')];
    expect(await stuckTo(b, 'late-1')).toBe(two);
    expect(await stuckTo(b, 'late-2')).toBe(two);

    // Gone from DNS: no new client goes there, the two live ones stay and still work end to end.
    dns.setA('brokers.test', ['127.0.0.2']);
    await waitForLog(b.logs, { msg: 'backends changed' }, 2);
    expect(b.server.pool.all().map((x) => x.id)).toEqual([one]);
    expect(b.server.pool.get(two)?.activeConnections).toBe(2);
    expect(counter(b, 'dns_backends_removed')).toBe(1);
    const metrics = (await b.server.metrics!.exposition()).body;
    expect(metrics).toMatch(/^tether_dns_backends_added_total 1$/m);
    expect(metrics).toMatch(/^tether_dns_backends_removed_total 1$/m);
    for (const id of ['after-1', 'after-2', 'after-3']) {
      await connect(b, id);
      expect(await stuckTo(b, id)).toBe(one);
    }
    const got = new Promise<string>((resolve) => onTwo[1]!.once('message', (_t, payload) => resolve(payload.toString())));
    await onTwo[1]!.subscribeAsync('dns/still-here');
    await onTwo[0]!.publishAsync('dns/still-here', 'yes');
    expect(await got).toBe('yes');
    expect(onTwo.every((c) => c.connected)).toBe(true);
    expect(m1.pid).toBeGreaterThan(0);
  });

  it('a DNS outage (timeouts, then SERVFAIL) keeps the last known set; an empty answer keeps it for the hold time', async () => {
    const dns = await dnsServer();
    const port = await freePort();
    await mosquitto('127.0.0.2', port);
    await mosquitto('127.0.0.3', port);
    dns.setA('brokers.test', ['127.0.0.2', '127.0.0.3']);
    const b = await balancer([{ use: 'dns', options: { name: 'brokers.test', port, resolvers: [dns.address], hold: '10m', ...FAST_DNS } }]);
    const listed = (): string[] => b.server.pool.all().map((x) => x.id);
    const both = [`brokers.test/127.0.0.2:${port}`, `brokers.test/127.0.0.3:${port}`];
    expect(listed()).toEqual(both);

    dns.mode = 'drop';
    await resolutions(b, 3, 'dns_resolution_failures');
    dns.mode = 'servfail';
    await resolutions(b, 3, 'dns_resolution_failures');
    expect(listed()).toEqual(both);
    await connect(b, 'during-outage');
    expect(both).toContain(await stuckTo(b, 'during-outage'));
    expect(logLines(b.logs, { msg: 'DNS resolution failed; keeping the last known backends' })).toHaveLength(1);

    dns.mode = 'answer';
    dns.remove('brokers.test');
    await waitForLog(b.logs, { msg: 'DNS resolution works again' });
    await resolutions(b, 3);
    expect(listed()).toEqual(both);
    expect(logLines(b.logs, { msg: 'backends changed' })).toHaveLength(0);
  });

  it('the stick table and rendezvous hashing keep their keys when the same backends come back in another order', async () => {
    const dns = await dnsServer();
    const port = await freePort();
    for (const host of ['127.0.0.2', '127.0.0.3', '127.0.0.4']) await mosquitto(host, port);
    dns.setA('brokers.test', ['127.0.0.2', '127.0.0.3', '127.0.0.4']);
    const provider = { use: 'dns', options: { name: 'brokers.test', port, resolvers: [dns.address], ...FAST_DNS } };
    const sticky = await balancer([provider]);
    const hashed = await balancer([provider], { select: ['rendezvous-hash', 'least-connections'] });
    const keys = Array.from({ length: 30 }, (_, i) => `device-${i}`);
    const hashedChoice = async (): Promise<(string | null | undefined)[]> => Promise.all(keys.map(async (k) => (await hashed.server.explain(connectBytes(k))).backend));
    for (const k of keys.slice(0, 6)) await connect(sticky, k);
    const table = (await tableEntries(sticky)).map((e) => [e.key, e.backend]).sort();
    const choices = await hashedChoice();
    expect(new Set(choices).size).toBeGreaterThan(1);
    const objects = sticky.server.pool.all().slice();

    dns.reverse = true;
    dns.setA('brokers.test', ['127.0.0.4', '127.0.0.3', '127.0.0.2']);
    await resolutions(sticky, 3);
    await resolutions(hashed, 3);
    expect(logLines(sticky.logs, { msg: 'backends changed' })).toHaveLength(0);
    expect(sticky.server.pool.all()).toEqual(objects);
    expect((await tableEntries(sticky)).map((e) => [e.key, e.backend]).sort()).toEqual(table);
    expect(await hashedChoice()).toEqual(choices);
  });
});

describe.skipIf(skip !== '')(`DNS SRV records${skip}`, () => {
  it('spreads clients in proportion to the SRV weights, over the lowest priority; a higher priority is a backup, used when none of the lowest can take a client', async () => {
    const dns = await dnsServer();
    const [light, heavy, backup] = [await mosquitto('127.0.0.1'), await mosquitto('127.0.0.1'), await mosquitto('127.0.0.1')];
    dns.setA('light.test', ['127.0.0.1']);
    dns.setA('heavy.test', ['127.0.0.1']);
    dns.setA('backup.test', ['127.0.0.1']);
    dns.setSrv('_mqtt._tcp.test', [
      { target: 'light.test', port: light.port, priority: 10, weight: 1 },
      { target: 'heavy.test', port: heavy.port, priority: 10, weight: 3 },
      { target: 'backup.test', port: backup.port, priority: 20, weight: 100 },
    ]);
    const b = await balancer([{ use: 'dns', options: { name: '_mqtt._tcp.test', type: 'SRV', resolvers: [dns.address], ...FAST_DNS } }]);
    const lightId = `_mqtt._tcp.test/light.test:${light.port}`;
    const heavyId = `_mqtt._tcp.test/heavy.test:${heavy.port}`;
    const backupId = `_mqtt._tcp.test/backup.test:${backup.port}`;
    expect(b.server.pool.all().map((x) => [x.id, x.weight, x.source, x.backup === true])).toEqual([
      [backupId, 100, 'dns SRV _mqtt._tcp.test', true],
      [heavyId, 3, 'dns SRV _mqtt._tcp.test', false],
      [lightId, 1, 'dns SRV _mqtt._tcp.test', false],
    ]);
    // maxRecords cuts the backups first, never the records in use (the backup's name sorts first).
    const capped = await balancer([{ use: 'dns', options: { name: '_mqtt._tcp.test', type: 'SRV', resolvers: [dns.address], maxRecords: 2, ...FAST_DNS } }]);
    expect(capped.server.pool.all().map((x) => x.id)).toEqual([heavyId, lightId]);
    const ids = Array.from({ length: 40 }, (_, i) => `srv-${i}`);
    for (const id of ids) await connect(b, id);
    const on = await Promise.all(ids.map((id) => stuckTo(b, id)));
    expect(on.filter((x) => x === lightId)).toHaveLength(10);
    expect(on.filter((x) => x === heavyId)).toHaveLength(30);
    // With both of the lowest priority in maintenance, the backup takes the next clients.
    for (const id of [lightId, heavyId]) b.server.pool.setAdminState(id, 'maint');
    await connect(b, 'srv-after');
    expect(await stuckTo(b, 'srv-after')).toBe(backupId);
  });
});

describe('DNS provider at start', () => {
  it('a name that does not resolve: starts with a warning and retries (warn), or refuses to start (refuse)', async () => {
    const dns = await dnsServer();
    const options = { name: 'later.test', port: 1883, resolvers: [dns.address], ...FAST_DNS };
    const b = await balancer([{ use: 'dns', options }]);
    expect(b.server.pool.all()).toEqual([]);
    await waitForLog(b.logs, { msg: 'dns later.test:1883 gave no usable record at start; starting without its backends and retrying' });
    dns.setA('later.test', ['127.0.0.9']);
    await waitFor(() => b.server.pool.all().length === 1, { what: 'the name to resolve' });
    await expect(startBalancer({ backends: [], providers: [{ use: 'dns', options: { ...options, name: 'never.test', onUnresolved: 'refuse' } }] }))
      .rejects.toThrow(/dns never\.test:1883 gave no usable record at start \(onUnresolved: refuse\)/);
  });

  it('bounds the records taken from an answer, and refuses options it cannot use with a clear error', async () => {
    const dns = await dnsServer();
    dns.setA('many.test', Array.from({ length: 10 }, (_, i) => `127.0.1.${i + 1}`));
    const b = await balancer([{ use: 'dns', options: { name: 'many.test', port: 1883, maxRecords: 3, resolvers: [dns.address], ...FAST_DNS } }]);
    expect(b.server.pool.all().map((x) => x.id)).toEqual(['many.test/127.0.1.10:1883', 'many.test/127.0.1.1:1883', 'many.test/127.0.1.2:1883']);
    expect(counter(b, 'dns_records_dropped')).toBeGreaterThanOrEqual(7);
    await waitForLog(b.logs, { msg: 'DNS answer has more records than maxRecords; the rest are left out' });
    await expect(startBalancer({ backends: [], providers: [{ use: 'dns', options: { name: 'many.test' } }] })).rejects.toThrow(/options\.port is required for A records/);
    await expect(startBalancer({ backends: [], providers: [{ use: 'dns', options: { name: 'many.test', port: 1, resolvers: ['nope'] } }] })).rejects.toThrow(/dns.*resolvers/);
  });

  it('resolvers that do not answer do not hold the start: it goes on without the backends, which come once DNS answers', async () => {
    const dns = await dnsServer();
    dns.mode = 'drop';
    const options = { name: 'slow.test', port: 1883, resolvers: [dns.address], ...FAST_DNS, timeout: '3s', tries: 2 };
    const b = await balancer([{ use: 'dns', options }]);
    expect(b.server.pool.all()).toEqual([]);
    await waitForLog(b.logs, { msg: 'DNS resolution still running at start; starting without its backends' });
    dns.setA('slow.test', ['127.0.0.9']);
    dns.mode = 'answer';
    await waitFor(() => b.server.pool.all().length === 1, { what: 'the backend once DNS answers', timeoutMs: 20_000 });
  });

  it('several resolvers: one that does not answer is passed over for the next', async () => {
    const silent = await dnsServer();
    silent.mode = 'drop';
    const dns = await dnsServer();
    dns.setA('two.test', ['127.0.0.7']);
    const b = await balancer([{ use: 'dns', options: { name: 'two.test', port: 1883, resolvers: [silent.address, dns.address], ...FAST_DNS } }]);
    expect(b.server.pool.all().map((x) => x.id)).toEqual(['two.test/127.0.0.7:1883']);
    expect(silent.queries).toBeGreaterThan(0);
  });
});
