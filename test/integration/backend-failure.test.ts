import { startEmbeddedBrokers, type EmbeddedBroker } from '@tether/embedded-broker';
import mqtt, { type IConnackPacket, type MqttClient } from 'mqtt';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { startBalancer, stuckTo, type TestBalancer } from '../harness/balancer.ts';
import { freePort } from '../harness/free-port.ts';
import { Cleanup, counterChanges, logLines, waitFor, waitForLog, within } from '../harness/poll.ts';
import { connectBytes, packetBytes, RawClient, type ProtocolVersion } from '../harness/raw-mqtt-client.ts';

/**
 * Backends that refuse, vanish or die mid-session. Real aedes brokers play the live backends; a
 * dead backend is a loopback port that was free a moment ago and that nothing listens on, so
 * connecting to it is refused at once. Every test builds its own brokers and balancer, because
 * several of them kill a broker.
 */

// Generous bounds for a loaded 2-core machine (the test project does not inherit the root
// vitest.config's testTimeout; every wait inside a test has its own, shorter bound).
vi.setConfig({ testTimeout: 60_000, hookTimeout: 30_000 });

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

async function brokers(n: number): Promise<EmbeddedBroker[]> {
  return cleanup.add(await startEmbeddedBrokers(n, { cluster: false }), (bs) => Promise.all(bs.map((b) => b.close())));
}

async function balancerFor(backends: (string | Record<string, unknown>)[], overrides: Record<string, unknown> = {}): Promise<TestBalancer> {
  return cleanup.add(await startBalancer({ backends, retries: 1, ...overrides }), (b) => b.close());
}

const spec = (b: EmbeddedBroker): string => `${b.id}=127.0.0.1:${b.port}`;

/** Connects an mqtt.js client (never reconnecting by itself) and resolves with its CONNACK. */
async function connectClient(balancer: TestBalancer, clientId: string, options: mqtt.IClientOptions = {}): Promise<{ client: MqttClient; connack: IConnackPacket }> {
  const client = cleanup.add(mqtt.connect(balancer.url, { clientId, reconnectPeriod: 0, connectTimeout: 10_000, ...options }), (c) => c.endAsync(true));
  const connack = await within(
    new Promise<IConnackPacket>((resolve, reject) => {
      client.once('connect', resolve);
      client.once('error', reject);
    }),
    `${clientId} to connect`,
  );
  return { client, connack };
}


/** aedes keeps its connected clients in `clients` (by id); its type declarations leave it out. */
interface AedesClient {
  readonly connected: boolean;
  readonly conn: { destroy(): void };
}
function brokerClient(broker: EmbeddedBroker, clientId: string): AedesClient | undefined {
  return (broker.aedes as unknown as { clients: Record<string, AedesClient | undefined> }).clients[clientId];
}

/** Which broker holds a connected client with this id (read from the brokers, not from Tether). */
function holder(list: readonly EmbeddedBroker[], clientId: string): EmbeddedBroker | undefined {
  return list.find((b) => brokerClient(b, clientId)?.connected);
}

describe('a backend that refuses connections', () => {
  it('is retried on another backend, which the stick table then records', async () => {
    const [live] = (await brokers(1)) as [EmbeddedBroker];
    const deadPort = await freePort(); // never listened on: connects are refused
    const balancer = await balancerFor([`dead=127.0.0.1:${deadPort}`, spec(live)]);

    // The first client lands on `live` whatever least-connections tried first. While it stays
    // connected, `live` has one connection and `dead` none, so the next client is sent to `dead`
    // first, for certain, and must be retried on `live`.
    const first = await connectClient(balancer, 'refused-first');
    expect(first.connack.returnCode).toBe(0);
    const stats = balancer.server.stats.snapshot();
    const failedLogs = logLines(balancer.logs, { msg: 'backend connect failed, trying another', backend: 'dead' }).length;

    const second = await connectClient(balancer, 'refused-second');
    expect(second.connack.returnCode).toBe(0);
    await waitFor(() => holder([live], 'refused-second'), { what: 'the broker to hold refused-second' });

    const changes = counterChanges(stats, balancer.server.stats.snapshot());
    expect(changes.upstream_connect_failures).toBe(1);
    expect(changes.connections_spliced).toBe(1);
    expect(changes.rejected_no_backend).toBeUndefined();
    const line = await waitForLog(balancer.logs, { msg: 'backend connect failed, trying another', backend: 'dead' }, failedLogs + 1);
    expect(line.err).toMatch(/ECONNREFUSED/);
    // The table learned the backend that accepted, never the one that refused.
    expect(await stuckTo(balancer, 'refused-first')).toBe(live.id);
    expect(await stuckTo(balancer, 'refused-second')).toBe(live.id);

    // And the table is used: the same key comes back to `live` without touching `dead` again.
    await second.client.endAsync();
    const again = await connectClient(balancer, 'refused-second');
    expect(again.connack.returnCode).toBe(0);
    expect(balancer.server.stats.get('upstream_connect_failures')).toBe((stats.upstream_connect_failures ?? 0) + 1);
  });

  it('with retries 0 is not retried: the client is refused with a CONNACK even though another backend is up', async () => {
    const [live] = (await brokers(1)) as [EmbeddedBroker];
    const deadPort = await freePort();
    const balancer = await balancerFor([`dead=127.0.0.1:${deadPort}`, spec(live)], { retries: 0 });
    // Make `live` the busier backend so least-connections picks `dead`: hold `dead` out while
    // one client connects, then put it back.
    balancer.server.pool.setAdminState('dead', 'maint');
    await connectClient(balancer, 'retries0-holder');
    balancer.server.pool.setAdminState('dead', 'ready');

    const c = cleanup.add(await RawClient.connect(balancer.port), (r) => r.destroy());
    await c.write(connectBytes('retries0-victim', 4));
    const connack = await c.waitForPacket('connack');
    expect(connack.returnCode).toBe(3);
    await c.waitClosed();
    expect(balancer.server.stats.get('upstream_connect_failures')).toBe(1);
    expect(balancer.server.stats.get('rejected_no_backend')).toBe(1);
    expect(await stuckTo(balancer, 'retries0-victim')).toBeUndefined();
  });
});

describe('a stick entry whose backend went away', () => {
  it('re-dispatches to a live backend and the entry is rewritten', async () => {
    const list = await brokers(2);
    const balancer = await balancerFor(list.map(spec));

    const { client } = await connectClient(balancer, 'mover', { clean: false });
    await client.subscribeAsync('mover/#', { qos: 1 });
    const original = await waitFor(() => holder(list, 'mover'), { what: 'a broker to hold mover' });
    expect(await stuckTo(balancer, 'mover')).toBe(original.id);
    await client.endAsync();

    // The broker behind the entry goes away: its port now refuses connections.
    await original.close();
    const other = list.find((b) => b !== original)!;
    const stats = balancer.server.stats.snapshot();

    const back = await connectClient(balancer, 'mover', { clean: false });
    expect(back.connack.returnCode).toBe(0);
    // A different, independent broker: the old session is gone, which the client is told.
    expect(back.connack.sessionPresent).toBe(false);
    await waitFor(() => holder([other], 'mover'), { what: 'the other broker to hold mover' });
    expect(await stuckTo(balancer, 'mover')).toBe(other.id);
    const changes = counterChanges(stats, balancer.server.stats.snapshot());
    expect(changes.upstream_connect_failures).toBe(1);
    expect(changes['stick_table_rewrites']).toBe(1);
    const line = await waitForLog(balancer.logs, { msg: 'backend connect failed, trying another', backend: original.id });
    expect(line.err).toMatch(/ECONNREFUSED/);

    // From now on the entry leads straight to the live broker (which now holds the session), with
    // no failed attempt first.
    await back.client.subscribeAsync('mover/#', { qos: 1 });
    await back.client.endAsync();
    const third = await connectClient(balancer, 'mover', { clean: false });
    expect(third.connack.sessionPresent).toBe(true);
    await waitFor(() => holder([other], 'mover'), { what: 'the other broker to hold mover again' });
    expect(balancer.server.stats.get('upstream_connect_failures')).toBe((stats.upstream_connect_failures ?? 0) + 1);
  });
});

describe('all backends down', () => {
  /** Two backends whose ports nothing listens on. */
  async function deadBalancer(): Promise<TestBalancer> {
    return balancerFor([`dead1=127.0.0.1:${await freePort()}`, `dead2=127.0.0.1:${await freePort()}`]);
  }

  it.each([
    { level: 3, extra: false },
    { level: 4, extra: false },
    { level: 5, extra: false },
    { level: 4, extra: true },
  ] as { level: ProtocolVersion; extra: boolean }[])('MQTT level $level (more packets after CONNECT: $extra): CONNACK "server unavailable", then a clean close', async ({ level, extra }) => {
    const balancer = await deadBalancer();
    const c = cleanup.add(await RawClient.connect(balancer.port, { parse: level }), (r) => r.destroy());
    const connect = connectBytes(`down-${level}`, level);
    // A client that pipelines packets after its CONNECT must still get the CONNACK, not a reset
    // caused by unread bytes.
    const more = extra ? packetBytes({ cmd: 'publish', topic: 't', payload: Buffer.alloc(2048, 1), qos: 0, dup: false, retain: false }, level) : Buffer.alloc(0);
    await c.write(Buffer.concat([connect, more]));

    const connack = await c.waitForPacket('connack');
    if (level === 5) expect(connack.reasonCode).toBe(0x88);
    else expect(connack.returnCode).toBe(3);
    expect(connack.sessionPresent).toBe(false);
    const closed = await c.waitClosed('Tether to close the refused client');
    // Closed with a FIN after the CONNACK, never a bare reset.
    expect(closed.error).toBeUndefined();
    expect(closed.gotEnd).toBe(true);
    expect(c.packets.map((p) => p.cmd)).toEqual(['connack']);

    const line = await waitForLog(balancer.logs, { msg: 'connection rejected', reason: 'no_backend' });
    expect(line.err).toMatch(/dead1.*ECONNREFUSED.*dead2.*ECONNREFUSED|dead2.*ECONNREFUSED.*dead1.*ECONNREFUSED/);
    const stats = balancer.server.stats.snapshot();
    expect(stats.rejected_no_backend).toBe(1);
    expect(stats.upstream_connect_failures).toBe(2); // the first choice and one retry
    expect(stats.connections_spliced).toBeUndefined();
  });

  it.each([
    { protocolVersion: 4 as const, code: 3 },
    { protocolVersion: 5 as const, code: 0x88 },
  ])('mqtt.js with protocolVersion $protocolVersion gets error code $code and is closed', async ({ protocolVersion, code }) => {
    const balancer = await deadBalancer();
    const client = cleanup.add(mqtt.connect(balancer.url, { clientId: `mqttjs-down-${protocolVersion}`, protocolVersion, reconnectPeriod: 0, connectTimeout: 10_000 }), (c) => c.endAsync(true));
    const closed = within(new Promise<void>((resolve) => client.once('close', () => resolve())), 'mqtt.js to see the connection close');
    const err = await within(new Promise<Error & { code?: number }>((resolve) => client.once('error', resolve)), 'mqtt.js to report the refusal');
    expect(err.code).toBe(code);
    expect(err.message).toMatch(/Server unavailable/i);
    await closed;
    expect(client.connected).toBe(false);
  });

  it('with no backend ready at all (maintenance) refuses at once, without trying to connect', async () => {
    const [b] = (await brokers(1)) as [EmbeddedBroker];
    const balancer = await balancerFor([{ name: 'resting', address: `127.0.0.1:${b.port}`, state: 'maint' }]);
    const c = cleanup.add(await RawClient.connect(balancer.port, { parse: 5 }), (r) => r.destroy());
    await c.write(connectBytes('nobody-ready', 5));
    expect((await c.waitForPacket('connack')).reasonCode).toBe(0x88);
    expect((await c.waitClosed()).error).toBeUndefined();
    const line = await waitForLog(balancer.logs, { msg: 'connection rejected', reason: 'no_backend' });
    expect(line.err).toMatch(/no backend is ready/);
    expect(balancer.server.stats.get('upstream_connect_failures')).toBe(0);
    expect(b.aedes.connectedClients).toBe(0);
  });
});

describe('a backend that dies mid-session', () => {
  it('a broker dropping one client connection closes that client, cleanly, and only it', async () => {
    const [b] = (await brokers(1)) as [EmbeddedBroker];
    const balancer = await balancerFor([spec(b)]);
    const victim = cleanup.add(await RawClient.connect(balancer.port), (r) => r.destroy());
    await victim.write(connectBytes('dropped', 4));
    expect((await victim.waitForPacket('connack')).returnCode).toBe(0);
    const bystander = await connectClient(balancer, 'bystander');

    const { conn } = await waitFor(() => brokerClient(b, 'dropped'), { what: 'aedes to register "dropped"' });
    conn.destroy();

    const closed = await victim.waitClosed('the client side to close after its broker connection died');
    expect(closed.error).toBeUndefined(); // the broker's FIN was passed on as a FIN
    const line = await waitForLog(balancer.logs, { msg: 'connection closed', key: 'dropped' });
    expect(line.reason).toBe('server_closed');
    expect(line.backend).toBe(b.id);
    // The other client's connection is untouched and working.
    expect(bystander.client.connected).toBe(true);
    await bystander.client.subscribeAsync('still/here', { qos: 1 });
    await waitFor(() => balancer.server.stats.get('connections_active') === 1, { what: 'only the bystander to stay spliced' });
  });

  it('a whole broker going down closes all its clients; new and returning clients land on the other one', async () => {
    const list = await brokers(2);
    const [doomed, survivor] = list as [EmbeddedBroker, EmbeddedBroker];
    const balancer = await balancerFor(list.map(spec));
    // Put both clients on `doomed` by holding `survivor` out while they connect.
    balancer.server.pool.setAdminState(survivor.id, 'maint');
    const clients = [await connectClient(balancer, 'doomed-1'), await connectClient(balancer, 'doomed-2')];
    balancer.server.pool.setAdminState(survivor.id, 'ready');
    await waitFor(() => holder([doomed], 'doomed-1') && holder([doomed], 'doomed-2'), { what: 'both clients on the doomed broker' });
    const closes = clients.map((c) => within(new Promise<void>((resolve) => c.client.once('close', () => resolve())), 'mqtt.js to see its broker go'));

    await doomed.close();
    await Promise.all(closes);
    for (const id of ['doomed-1', 'doomed-2']) {
      const line = await waitForLog(balancer.logs, { msg: 'connection closed', key: id });
      expect(line.reason).toMatch(/^server_/);
    }
    await waitFor(() => balancer.server.stats.get('connections_active') === 0, { what: 'no spliced connection left' });
    expect(balancer.server.pool.get(doomed.id)!.activeConnections).toBe(0);

    // The balancer lives on: a returning client (stuck to the dead broker) and a new one both connect.
    const returning = await connectClient(balancer, 'doomed-1');
    const fresh = await connectClient(balancer, 'newcomer');
    expect([returning.connack.returnCode, fresh.connack.returnCode]).toEqual([0, 0]);
    await waitFor(() => holder([survivor], 'doomed-1') && holder([survivor], 'newcomer'), { what: 'both clients on the surviving broker' });
    expect(await stuckTo(balancer, 'doomed-1')).toBe(survivor.id);
  });
});
