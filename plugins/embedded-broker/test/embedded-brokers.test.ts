import { connect as tcpConnect, createServer } from 'node:net';
import { connect as mqttConnect, connectAsync, type IClientOptions, type MqttClient } from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { startEmbeddedBrokers, type EmbeddedBroker } from '../src/index.ts';

// Real aedes brokers on loopback ports chosen by the OS, real mqtt clients. Everything started here
// is closed in afterEach; every wait is bounded.

const brokers: EmbeddedBroker[] = [];
const clients: MqttClient[] = [];

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.endAsync(true)));
  await Promise.all(brokers.splice(0).map((b) => b.close()));
});

async function start(count: number, options?: Parameters<typeof startEmbeddedBrokers>[1]): Promise<EmbeddedBroker[]> {
  const started = await startEmbeddedBrokers(count, options);
  brokers.push(...started);
  return started;
}

async function client(broker: EmbeddedBroker, options: IClientOptions = {}): Promise<MqttClient> {
  const host = broker.host.includes(':') ? `[${broker.host}]` : broker.host;
  const c = await connectAsync(`mqtt://${host}:${broker.port}`, { reconnectPeriod: 0, connectTimeout: 5000, ...options });
  clients.push(c);
  return c;
}

/**
 * A client whose listeners can be attached before it connects (queued messages are delivered right
 * after CONNACK). Resolves with the CONNACK's session-present flag once `connect()` is called.
 */
function clientLater(broker: EmbeddedBroker, options: IClientOptions): { c: MqttClient; connect: () => Promise<boolean> } {
  const c = mqttConnect(`mqtt://${broker.host}:${broker.port}`, { reconnectPeriod: 0, connectTimeout: 5000, ...options, manualConnect: true });
  clients.push(c);
  const connect = (): Promise<boolean> => new Promise((resolve, reject) => {
    c.once('connect', (packet) => resolve(packet.sessionPresent));
    c.once('error', reject);
    c.connect();
  });
  return { c, connect };
}

/** Resolves with the first message whose payload is `payload`; rejects after `ms` (a bound, not a sleep). */
function waitForPayload(c: MqttClient, payload: string, ms = 5000): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      c.off('message', onMessage);
      reject(new Error(`no message "${payload}" within ${ms} ms`));
    }, ms);
    const onMessage = (_topic: string, body: Buffer): void => {
      if (body.toString() !== payload) return;
      clearTimeout(timer);
      c.off('message', onMessage);
      resolve();
    };
    c.on('message', onMessage);
  });
}

/** Collects every payload the client receives from now on. */
function record(c: MqttClient): string[] {
  const seen: string[] = [];
  c.on('message', (_topic, body) => seen.push(body.toString()));
  return seen;
}

describe('startEmbeddedBrokers', () => {
  it('starts the requested number of brokers on distinct loopback ports, each serving MQTT', async () => {
    const [one, two] = await start(2);
    expect([one?.id, two?.id]).toEqual(['embedded1', 'embedded2']);
    expect(one?.host).toBe('127.0.0.1');
    expect(one!.port).toBeGreaterThan(0);
    expect(two!.port).toBeGreaterThan(0);
    expect(one!.port).not.toBe(two!.port);
    const c1 = await client(one!, { clientId: 'probe1' });
    const c2 = await client(two!, { clientId: 'probe2' });
    expect(c1.connected && c2.connected).toBe(true);
    expect(one!.aedes.id).toBe('embedded1');
  });

  it('starts nothing for a count of zero', async () => {
    expect(await start(0)).toEqual([]);
  });

  it('listens on another loopback host when asked (IPv6)', async () => {
    const [broker] = await start(1, { host: '::1' });
    expect(broker?.host).toBe('::1');
    const c = await client(broker!);
    expect(c.connected).toBe(true);
  });
});

describe('clustered brokers (default)', () => {
  it('deliver a message published on one broker to a subscriber on the other', async () => {
    const [one, two] = await start(2);
    const subscriber = await client(two!);
    await subscriber.subscribeAsync('cluster/t', { qos: 1 });
    const arrived = waitForPayload(subscriber, 'across');
    const publisher = await client(one!);
    await publisher.publishAsync('cluster/t', 'across', { qos: 1 });
    await expect(arrived).resolves.toBeUndefined();
  });

  it('share sessions: a persistent client that moves to the other broker finds its session and queued message', async () => {
    const [one, two] = await start(2);
    const first = await client(one!, { clientId: 'roamer', clean: false });
    await first.subscribeAsync('cluster/queued', { qos: 1 });
    await first.endAsync();
    const publisher = await client(two!);
    await publisher.publishAsync('cluster/queued', 'while-away', { qos: 1 });
    const again = clientLater(two!, { clientId: 'roamer', clean: false });
    const arrived = waitForPayload(again.c, 'while-away');
    expect(await again.connect()).toBe(true);
    await expect(arrived).resolves.toBeUndefined();
  });

  it('keep routing between the remaining brokers after one closes', async () => {
    const [one, two, three] = await start(3);
    await one!.close(); // must not close the message bus the others share
    const subscriber = await client(three!);
    await subscriber.subscribeAsync('cluster/after', { qos: 1 });
    const arrived = waitForPayload(subscriber, 'still-routed');
    const publisher = await client(two!);
    await publisher.publishAsync('cluster/after', 'still-routed', { qos: 1 });
    await expect(arrived).resolves.toBeUndefined();
  });
});

describe('independent brokers (cluster: false)', () => {
  it('do not deliver a message published on one broker to a subscriber on the other', async () => {
    const [one, two] = await start(2, { cluster: false });
    const subscriber = await client(two!);
    await subscriber.subscribeAsync('solo/t', { qos: 1 });
    const seen = record(subscriber);
    // The broker has fully handled the first message (PUBACK) before the second is published; the
    // second, on the subscriber's own broker, must arrive, and be the only thing that does.
    await (await client(one!)).publishAsync('solo/t', 'from-other-broker', { qos: 1 });
    const ownArrived = waitForPayload(subscriber, 'from-own-broker');
    await (await client(two!)).publishAsync('solo/t', 'from-own-broker', { qos: 1 });
    await ownArrived;
    expect(seen).toEqual(['from-own-broker']);
  });

  it('do not share sessions', async () => {
    const [one, two] = await start(2, { cluster: false });
    const first = await client(one!, { clientId: 'roamer', clean: false });
    await first.subscribeAsync('solo/q', { qos: 1 });
    await first.endAsync();
    const again = clientLater(two!, { clientId: 'roamer', clean: false });
    expect(await again.connect()).toBe(false);
  });
});

describe('EmbeddedBroker.close', () => {
  it('frees the port: connections are refused and the port can be bound again', async () => {
    const [broker] = await start(1);
    const { host, port } = broker!;
    await broker!.close();
    const refused = await new Promise<string>((resolve) => {
      const socket = tcpConnect({ host, port });
      socket.once('connect', () => { socket.destroy(); resolve('connected'); });
      socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
    });
    expect(refused).toBe('ECONNREFUSED');
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host, port }, () => resolve());
    });
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('disconnects connected clients instead of waiting for them', async () => {
    const [broker] = await start(1);
    const c = await client(broker!);
    const closed = new Promise<void>((resolve) => c.once('close', () => resolve()));
    await broker!.close();
    await closed;
    expect(c.connected).toBe(false);
  });

  it('can be called twice and resolves both times', async () => {
    const [broker] = await start(1);
    const first = broker!.close();
    const second = broker!.close();
    expect(second).toBe(first);
    await expect(Promise.all([first, second])).resolves.toEqual([undefined, undefined]);
  });
});
