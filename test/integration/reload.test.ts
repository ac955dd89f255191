import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { closeAllClients, connectClient, disconnect } from '../../cli/test/helpers/mqtt.ts';
import { startBalancer, stuckTo, tableEntries, type TestBalancer } from '../harness/balancer.ts';
import { freePort } from '../harness/free-port.ts';
import { startHaBrokers, waitForHolder, type HaAedes } from '../harness/ha-aedes.ts';
import { waitFor } from '../harness/poll.ts';
import { connectBytes, RawClient } from '../harness/raw-mqtt-client.ts';

/**
 * Live reload, in process: a balancer started from a YAML file (as `tether start -c` does, with
 * the listen address overridden to port 0), independent aedes brokers that say who is connected
 * where, real mqtt.js clients. The file is rewritten and `server.reload()` is what SIGHUP, `tether
 * reload` and `POST /reload` call.
 */

const T = 60_000;
const cleanups: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  await closeAllClients();
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Setup {
  readonly brokers: HaAedes[];
  readonly balancer: TestBalancer;
  /** Rewrites the configuration file. */
  write(config: Record<string, unknown>): void;
}

async function setup(brokerCount: number, config: (brokers: HaAedes[]) => Record<string, unknown>): Promise<Setup> {
  const brokers = await startHaBrokers(brokerCount);
  cleanups.push(() => Promise.all(brokers.map((b) => b.close())));
  const dir = mkdtempSync(join(tmpdir(), 'tether-reload-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'tether.yaml');
  const write = (c: Record<string, unknown>): void => writeFileSync(file, YAML.stringify(c));
  write(config(brokers));
  const balancer = await startBalancer({}, file);
  cleanups.push(() => balancer.close());
  return { brokers, balancer, write };
}

const backend = (b: HaAedes, extra: Record<string, unknown> = {}) => ({ name: b.id, address: `127.0.0.1:${b.port}`, ...extra });

describe('live reload: connections', () => {
  it('spliced connections keep flowing through many reloads, with no message lost, duplicated or reordered', async () => {
    const { brokers, balancer, write } = await setup(2, ([b1]) => ({ backends: [backend(b1!)] }));
    const [b1, b2] = brokers as [HaAedes, HaAedes];
    const sub = await connectClient(balancer.url, { clientId: 'reload-sub', clean: false });
    await sub.client.subscribeAsync('flow/#', { qos: 1 });
    const pub = await connectClient(balancer.url, { clientId: 'reload-pub' });
    expect(b1.holds('reload-sub') && b1.holds('reload-pub')).toBe(true);

    const variants = [
      { backends: [backend(b1, { weight: 3 })], select: ['stick-table', 'round-robin'] },
      { backends: [backend(b1), backend(b2)], timeouts: { client: '20m', server: '20m' } },
      { backends: [backend(b1)], select: [{ use: 'stick-table', options: { size: 5000 } }, 'least-connections'], sniff: { timeout: '2s' } },
      { backends: [backend(b2), backend(b1, { weight: 2 })], key: ['username', 'client-id'] },
      { backends: [backend(b1)] },
    ];
    const COUNT = 250;
    for (let i = 0; i < COUNT; i++) {
      // A reload every fifty messages, while the next ones are already on their way.
      if (i % 50 === 25) {
        write(variants[(i - 25) / 50]!);
        const reloading = balancer.server.reload('test');
        await pub.client.publishAsync(`flow/${i}`, `m${i}`, { qos: 1 });
        expect(await reloading).toMatchObject({ ok: true, errors: [] });
      } else {
        await pub.client.publishAsync(`flow/${i}`, `m${i}`, { qos: 1 });
      }
    }
    await waitFor(() => sub.messages.length >= COUNT, { what: () => `${COUNT} messages (got ${sub.messages.length})` });
    expect(sub.messages.map((m) => m.payload)).toEqual(Array.from({ length: COUNT }, (_, i) => `m${i}`));
    expect(balancer.server.generation).toBe(1 + variants.length);
    // Neither connection was closed by any of it.
    expect(balancer.logs.filter((l) => l.msg === 'connection closed')).toEqual([]);
    expect(sub.client.connected && pub.client.connected).toBe(true);
  }, T);

  it('a connection still sending its CONNECT during a reload finishes under the generation that accepted it', async () => {
    const { brokers, balancer, write } = await setup(1, ([b1]) => ({ backends: [backend(b1!)], key: ['client-id'] }));
    const raw = await RawClient.connect(balancer.port);
    const connect = connectBytes('half-sent', 4, { username: 'the-user' });
    await raw.write(connect.subarray(0, 10));
    await waitFor(() => balancer.logs.length > 0 && balancer.server.stats.get('connections_accepted') === 1, { what: 'the connection to be accepted' });
    write({ backends: [backend(brokers[0]!)], key: ['username'] });
    expect((await balancer.server.reload('test')).changes).toContain('key: client-id → username');
    await raw.write(connect.subarray(10));
    expect((await raw.waitForPacket('connack')).returnCode).toBe(0);
    // The old generation's extractor chose the key.
    expect(await stuckTo(balancer, 'half-sent')).toBe('b1');
    expect(await stuckTo(balancer, 'the-user')).toBeUndefined();
    // A new connection gets the new one.
    await connectClient(balancer.url, { clientId: 'after', username: 'user-after' });
    expect(await stuckTo(balancer, 'user-after')).toBe('b1');
    raw.destroy();
  }, T);
});

describe('live reload: what changes', () => {
  it('an invalid configuration changes nothing: every error is reported, the old generation runs on, status says so', async () => {
    const { brokers, balancer, write } = await setup(1, ([b1]) => ({ backends: [backend(b1!)] }));
    write({ backends: [{ name: 'x', address: 'not-an-address' }], retries: -1, unknownOption: true });
    const result = await balancer.server.reload('test');
    expect(result.ok).toBe(false);
    expect(result.generation).toBe(1);
    const errors = result.errors.join('\n');
    expect(errors).toMatch(/backends: \[0\]\.address/);
    expect(errors).toMatch(/retries/);
    expect(errors).toMatch(/unknownOption/);
    expect(balancer.logs.find((l) => l.msg === 'configuration reload failed: still running generation 1')).toMatchObject({ level: 50, errors: result.errors });
    expect(balancer.server.status()).toMatchObject({ generation: 1, lastFailure: { errors: result.errors } });
    await connectClient(balancer.url, { clientId: 'still-served' });
    expect(brokers[0]!.holds('still-served')).toBe(true);

    // A plugin that refuses its options is an error too, named after the plugin.
    write({ backends: [backend(brokers[0]!)], select: [{ use: 'stick-table', options: { size: 0 } }, 'least-connections'] });
    const plugin = await balancer.server.reload('test');
    expect(plugin.ok).toBe(false);
    expect(plugin.errors.join('\n')).toMatch(/plugin "stick-table": invalid options: size/);
    // A valid file afterwards is taken, and clears the failure.
    write({ backends: [backend(brokers[0]!)] });
    expect(await balancer.server.reload('test')).toMatchObject({ ok: true, generation: 2 });
    expect(balancer.server.status().lastFailure).toBeNull();
  }, T);

  it('a removed backend takes no new client while its live connections go on; an added one takes clients', async () => {
    const { brokers, balancer, write } = await setup(3, ([, b2]) => ({ backends: [backend(b2!)], select: ['round-robin'] }));
    const [b1, b2, b3] = brokers as [HaAedes, HaAedes, HaAedes];
    const old = await connectClient(balancer.url, { clientId: 'on-b2' });
    await old.client.subscribeAsync('still/here', { qos: 1 });
    expect(b2.holds('on-b2')).toBe(true);

    write({ backends: [backend(b1), backend(b3)], select: ['round-robin'] });
    const result = await balancer.server.reload('test');
    expect(result.changes).toEqual(expect.arrayContaining([
      `backend added: b1=127.0.0.1:${b1.port}`,
      `backend added: b3=127.0.0.1:${b3.port}`,
      'backend removed: b2 (1 live connections stay until they close)',
    ]));
    const ids = Array.from({ length: 6 }, (_, i) => `new-${i}`);
    for (const clientId of ids) await connectClient(balancer.url, { clientId });
    const holders = await Promise.all(ids.map((id) => waitForHolder(brokers, id)));
    expect(holders.filter((h) => h === b2)).toEqual([]);
    expect(new Set(holders.map((h) => h.id))).toEqual(new Set(['b1', 'b3']));
    // The connection to the removed broker still carries traffic both ways.
    const publisher = await connectClient(`mqtt://127.0.0.1:${b2.port}`, { clientId: 'direct' });
    await publisher.client.publishAsync('still/here', 'yes', { qos: 1 });
    await waitFor(() => old.messages.some((m) => m.payload === 'yes'), { what: 'the message through the removed backend' });
    expect(balancer.server.pool.all().map((b) => b.id)).toEqual(['b1', 'b3']);
    expect(balancer.server.pool.get('b2')?.activeConnections).toBe(1);
    await disconnect(old.client);
    await waitFor(() => balancer.server.pool.get('b2') === undefined, { what: 'b2 to be forgotten with its last connection' });
  }, T);

  it('the stick table keeps its entries through a reload, also when its options change, so reconnects find their session', async () => {
    const { brokers, balancer, write } = await setup(2, (bs) => ({ backends: bs.map((b) => backend(b)) }));
    const ids = Array.from({ length: 8 }, (_, i) => `sticky-${i}`);
    const home = new Map<string, string>();
    for (const clientId of ids) {
      const { client } = await connectClient(balancer.url, { clientId, clean: false });
      // A session with a subscription: the broker keeps it and says so at the next CONNECT.
      await client.subscribeAsync(`s/${clientId}`, { qos: 1 });
      home.set(clientId, (await waitForHolder(brokers, clientId)).id);
      await disconnect(client);
    }
    write({ backends: brokers.map((b) => backend(b, { weight: 7 })), select: [{ use: 'stick-table', options: { size: 1000, expire: '1h' } }, 'least-connections'] });
    expect(await balancer.server.reload('test')).toMatchObject({ ok: true });
    const [table] = await balancer.server.strategies.tables();
    expect(table).toMatchObject({ size: 1000, used: ids.length });
    for (const clientId of ids) {
      const { client, connack } = await connectClient(balancer.url, { clientId, clean: false });
      expect([(await waitForHolder(brokers, clientId)).id, connack.sessionPresent], clientId).toEqual([home.get(clientId), true]);
      await disconnect(client);
    }
    // Each entry was found once, by the reconnect after the reload (learning is not a hit).
    expect((await tableEntries(balancer)).map((e) => e.hits)).toEqual(ids.map(() => 1));
  }, T);

  it('a backend state set at runtime stays through a reload that does not change it', async () => {
    const { brokers, balancer, write } = await setup(2, (bs) => ({ backends: bs.map((b) => backend(b)) }));
    balancer.server.pool.setAdminState('b1', 'drain');
    write({ backends: brokers.map((b) => backend(b)), retries: 2 });
    expect((await balancer.server.reload('test')).changes).toEqual(['retries: 1 → 2']);
    expect(balancer.server.pool.get('b1')?.state).toBe('drain');
    write({ backends: [backend(brokers[0]!, { state: 'maint' }), backend(brokers[1]!)], retries: 2 });
    expect((await balancer.server.reload('test')).changes).toEqual(['backend changed: b1: state drain → maint']);
  }, T);
});

describe('live reload: listeners', () => {
  it('adds, moves and removes listeners: an unchanged one keeps its socket, a moved one is bound before the old closes, connections accepted on a closed one go on', async () => {
    const { balancer, write, brokers } = await setup(1, ([b1]) => ({ backends: [backend(b1!)], listeners: [{ name: 'extra', address: '127.0.0.1:0' }, { name: 'doomed', address: '127.0.0.1:0' }] }));
    const mainPort = balancer.port;
    const extraBefore = balancer.server.addresses.get('extra')!.port;
    const doomedPort = balancer.server.addresses.get('doomed')!.port;
    const onDoomed = await connectClient(`mqtt://127.0.0.1:${doomedPort}`, { clientId: 'via-doomed' });
    await onDoomed.client.subscribeAsync('doomed/t', { qos: 1 });
    const moved = await freePort();
    write({ backends: [backend(brokers[0]!)], listeners: [{ name: 'extra', address: `127.0.0.1:${moved}` }, { name: 'fresh', address: '127.0.0.1:0' }] });
    const result = await balancer.server.reload('test');
    expect(result.ok).toBe(true);
    expect(result.changes).toEqual(expect.arrayContaining([
      `listener extra moved 127.0.0.1:${extraBefore} → 127.0.0.1:${moved}`,
      `listener doomed on 127.0.0.1:${doomedPort} closed (its connections go on)`,
      expect.stringMatching(/^listener fresh opened on 127\.0\.0\.1:\d+$/),
    ]));
    expect(balancer.server.address.port).toBe(mainPort);
    expect([...balancer.server.addresses.keys()]).toEqual(['main', 'extra', 'fresh']);
    for (const [name, address] of balancer.server.addresses) await connectClient(`mqtt://127.0.0.1:${address.port}`, { clientId: `via-${name}` });
    await expect(connectClient(`mqtt://127.0.0.1:${doomedPort}`, { clientId: 'too-late' })).rejects.toThrow(/ECONNREFUSED/);
    // The connection accepted by the closed listener still works.
    const direct = await connectClient(`mqtt://127.0.0.1:${brokers[0]!.port}`, { clientId: 'direct' });
    await direct.client.publishAsync('doomed/t', 'through', { qos: 1 });
    await waitFor(() => onDoomed.messages.some((m) => m.payload === 'through'), { what: 'the message on the closed listener\'s connection' });
  }, T);

  it('a listener that cannot be bound fails the whole reload: nothing changes', async () => {
    const { balancer, write, brokers } = await setup(2, ([b1]) => ({ backends: [backend(b1!)] }));
    const taken = balancer.port;
    write({ backends: brokers.map((b) => backend(b)), listeners: [{ name: 'clash', address: `127.0.0.1:${taken}` }] });
    const result = await balancer.server.reload('test');
    expect(result.ok).toBe(false);
    expect(result.errors).toEqual([`127.0.0.1:${taken} is already in use; choose another address with listeners[name=clash].address`]);
    expect(balancer.server.pool.all().map((b) => b.id)).toEqual(['b1']);
    expect(balancer.server.generation).toBe(1);
  }, T);
});

describe('live reload: the admin API', () => {
  it('a new admin token applies to the next request, on the same socket', async () => {
    const first = 'first-token-0123456789';
    const second = 'second-token-0123456789';
    const { balancer, write, brokers } = await setup(1, ([b1]) => ({ backends: [backend(b1!)], admin: { listen: '127.0.0.1:0', token: first } }));
    const { port } = balancer.server.adminAddress!;
    const status = (token: string) => fetch(`http://127.0.0.1:${port}/status`, { headers: { authorization: `Bearer ${token}` } }).then((r) => r.status);
    expect(await status(first)).toBe(200);
    write({ backends: [backend(brokers[0]!)], admin: { listen: '127.0.0.1:0', token: second } });
    const result = await balancer.server.reload('test');
    expect(result.changes).toEqual(['admin token changed']);
    expect(JSON.stringify(result)).not.toContain(second);
    expect(balancer.server.adminAddress!.port).toBe(port);
    expect([await status(first), await status(second)]).toEqual([401, 200]);
  }, T);
});

describe('live reload: metrics', () => {
  it('counters run on across reloads, and a backend added by a reload has its series from the next scrape', async () => {
    const { brokers, balancer, write } = await setup(2, ([b1]) => ({ backends: [backend(b1!)] }));
    await connectClient(balancer.url, { clientId: 'counted' });
    const scrape = async (): Promise<string> => (await balancer.server.metrics!.exposition()).body;
    expect(await scrape()).toMatch(/^tether_backend_connections_total\{backend="b1"\} 1$/m);
    write({ backends: brokers.map((b) => backend(b)) });
    expect((await balancer.server.reload('test')).ok).toBe(true);
    const after = await scrape();
    expect(after).toMatch(/^tether_backend_connections_total\{backend="b1"\} 1$/m);
    expect(after).toMatch(/^tether_backend_up\{backend="b2"\} 1$/m);
  }, T);
});
