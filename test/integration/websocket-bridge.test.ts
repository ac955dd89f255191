import { startEmbeddedBrokers, type EmbeddedBroker } from '@tether/embedded-broker';
import mqtt from 'mqtt';
import mqttPacket from 'mqtt-packet';
import { WebSocket } from 'ws';
import { afterEach, describe, expect, it } from 'vitest';
import { stuckTo, tableEntries } from '../harness/balancer.ts';
import { skipReason } from '../harness/binaries.ts';
import { startMosquitto } from '../harness/mosquitto.ts';
import { AedesWitness } from '../harness/traffic-aedes-witness.ts';
import { ClientPool, Inbox } from '../harness/traffic-mqtt-clients.ts';
import { Teardown } from '../harness/traffic-teardown.ts';
import { withTimeout } from '../harness/traffic-wait.ts';
import { deadLoopbackPort } from '../../cli/test/helpers/cli.ts';
import { scrape } from '../harness/prometheus.ts';
import { waitFor } from '../harness/poll.ts';
import { startWsBalancer, type WsBalancer } from '../harness/websocket-balancer.ts';
import { aedesReconnectRounds, reconnectRounds, ROUNDS } from '../harness/websocket-rounds.ts';

/**
 * MQTT over WebSocket in bridge mode: mqtt.js clients open ws://…/mqtt on Tether's WebSocket
 * listener, Tether terminates the WebSocket and sends the MQTT bytes to the brokers' plain TCP
 * ports. The CONNECT inside the frames goes through the same stages as a TCP client's, so the
 * stick table keeps a persistent client on the broker that holds its session.
 */

const teardown = new Teardown();
const pool = new ClientPool();

afterEach(async () => {
  await pool.closeAll();
  await teardown.run();
}, 30_000);

describe('MQTT over WebSocket, bridged to plain MQTT brokers', { timeout: 90_000 }, () => {
  async function aedesSetup(select: string[] = ['stick-table', 'least-connections']): Promise<{ brokers: EmbeddedBroker[]; witness: AedesWitness; balancer: WsBalancer }> {
    const brokers = teardown.add('brokers', await startEmbeddedBrokers(2, { cluster: false }), (bs) => Promise.all(bs.map((b) => b.close())));
    const witness = teardown.add('witness', new AedesWitness(brokers), (w) => w.detach());
    const balancer = teardown.add('balancer', await startWsBalancer({ backends: brokers.map((b) => `${b.id}=127.0.0.1:${b.port}`), select }), (b) => b.close());
    return { brokers, witness, balancer };
  }

  it(`persistent mqtt.js clients over ws:// reconnecting ${ROUNDS} times land on their aedes broker every time, with their session and queued QoS 1 messages`, async () => {
    const { brokers, witness, balancer } = await aedesSetup();
    const clientId = 'ws-sticky-1';
    const { home, landed, sessionPresent } = await aedesReconnectRounds(pool, balancer.wsUrl, clientId, brokers, witness);
    expect(landed).toEqual(Array<string>(ROUNDS).fill(home));
    expect(sessionPresent).toEqual(Array<boolean>(ROUNDS).fill(true));
    expect(await stuckTo(balancer, clientId)).toBe(home);
    // Counted like TCP clients, on the ws listener.
    const stats = balancer.server.stats.snapshot();
    expect(stats.connections_spliced).toBeGreaterThanOrEqual(ROUNDS + 1);
    expect(balancer.logs.some((l) => l.msg === 'connection closed' && l.listener === 'ws')).toBe(true);
  });

  it('a TCP client and a WebSocket client with the same client id meet the same session on the same broker', async () => {
    const { witness, balancer } = await aedesSetup();
    const clientId = 'ws-and-tcp';
    const landing = witness.nextLanding(clientId);
    const tcp = await pool.connect(balancer.url, { clientId, clean: false });
    await tcp.client.subscribeAsync('mixed/#', { qos: 1 });
    const home = (await landing).broker;
    await pool.disconnect(tcp.client);
    const again = witness.nextLanding(clientId);
    const ws = await pool.connect(balancer.wsUrl, { clientId, clean: false });
    expect((await again).broker).toBe(home);
    expect(ws.connack.sessionPresent).toBe(true);
  });

  it('many clients at once over ws: each is spliced, publishes reach subscribers across the bridge both ways', async () => {
    const { balancer } = await aedesSetup(['stick-table', 'least-connections']);
    const inbox = new Inbox();
    // One broker's clients only see that broker's messages: use a key that puts both on one broker.
    const sub = await pool.connect(balancer.wsUrl, { clientId: 'fan-sub', clean: true }, inbox);
    await sub.client.subscribeAsync('fan/#', { qos: 1 });
    const home = (await tableEntries(balancer)).find((e) => e.key === 'fan-sub')!.backend;
    const pub = await pool.connect(`mqtt://127.0.0.1:${(await homePort(balancer, home))}`, { clientId: 'fan-pub', clean: true });
    const big = Buffer.alloc(200_000, 7);
    await pub.client.publishAsync('fan/big', big, { qos: 1 });
    for (let i = 0; i < 50; i++) await pub.client.publishAsync(`fan/${i}`, `m${i}`, { qos: 1 });
    await inbox.until('every message', (msgs) => msgs.length === 51);
    expect(inbox.messages[0]!.payload.equals(big)).toBe(true);
    expect(inbox.texts().slice(1)).toEqual(Array.from({ length: 50 }, (_, i) => `m${i}`));
    // The other way: the WebSocket client publishes a large message through the bridge.
    const echo = new Inbox();
    await pool.connect(`mqtt://127.0.0.1:${await homePort(balancer, home)}`, { clientId: 'fan-echo', clean: true }, echo).then((c) => c.client.subscribeAsync('back/#', { qos: 1 }));
    await sub.client.publishAsync('back/big', big, { qos: 1 });
    await echo.until('the large message from the ws client', (msgs) => msgs.length === 1);
    expect(echo.messages[0]!.payload.equals(big)).toBe(true);
  });

  it('a client message larger than websocket.maxMessageBytes closes that connection with 1009 before it is held whole; smaller ones pass', async () => {
    const brokers = teardown.add('brokers', await startEmbeddedBrokers(1, { cluster: false }), (bs) => Promise.all(bs.map((b) => b.close())));
    const balancer = teardown.add('balancer', await startWsBalancer({ backends: [`${brokers[0]!.id}=127.0.0.1:${brokers[0]!.port}`] }, { maxMessageBytes: 64 * 1024 }), (b) => b.close());
    const client = new WebSocket(balancer.wsUrl, 'mqtt');
    const closed = new Promise<number>((resolve) => client.once('close', (code) => resolve(code)));
    const received: Buffer[] = [];
    client.on('message', (data: Buffer) => received.push(data));
    await new Promise<void>((resolve, reject) => client.once('open', resolve).once('error', reject));
    client.send(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clientId: 'big-sender', clean: true, keepalive: 60 }));
    await waitFor(() => received.length > 0, { what: 'the CONNACK' });
    // A PUBLISH under the bound passes; one over it ends the connection.
    const publish = (size: number): Buffer => mqttPacket.generate({ cmd: 'publish', topic: 't', payload: Buffer.alloc(size), qos: 0, dup: false, retain: false });
    client.send(publish(60_000));
    client.send(publish(200_000));
    expect(await withTimeout(closed, 10_000, 'the close')).toBe(1009);
  });

  it('failover: a dead backend is skipped (retries) for WebSocket clients, and the metrics count them on the ws listener', async () => {
    const brokers = teardown.add('brokers', await startEmbeddedBrokers(1), (bs) => Promise.all(bs.map((b) => b.close())));
    const dead = await deadLoopbackPort();
    const balancer = teardown.add('balancer', await startWsBalancer({
      backends: [`dead=127.0.0.1:${dead}`, `alive=127.0.0.1:${brokers[0]!.port}`], select: ['round-robin'], retries: 1, 'metrics.listen': '127.0.0.1:0',
    }), (b) => b.close());
    for (let i = 0; i < 4; i++) {
      const { connack } = await pool.connect(balancer.wsUrl, { clientId: `failover-${i}`, clean: true });
      expect(connack.returnCode).toBe(0);
    }
    expect(balancer.server.stats.get('upstream_connect_failures')).toBeGreaterThanOrEqual(1);
    const url = `http://127.0.0.1:${balancer.server.metricsAddress!.port}/metrics`;
    const s = await waitFor(async () => {
      const r = (await scrape(url)).scrape;
      return r && r.value('tether_connections_accepted_total', { listener: 'ws' }) === 4 ? r : undefined;
    }, { what: 'the ws listener\'s connections in /metrics' });
    expect(s.value('tether_connections_accepted_total', { listener: 'main' })).toBe(0);
  });

  it('no backend: a valid CONNECT over ws gets CONNACK "server unavailable" in a binary frame, then a Close', async () => {
    const brokers = teardown.add('brokers', await startEmbeddedBrokers(1), (bs) => Promise.all(bs.map((b) => b.close())));
    const balancer = teardown.add('balancer', await startWsBalancer({ backends: [{ name: 'gone', address: `127.0.0.1:${brokers[0]!.port}`, state: 'maint' }] }), (b) => b.close());
    const client = mqtt.connect(balancer.wsUrl, { clientId: 'nobody-home', reconnectPeriod: 0, connectTimeout: 10_000 });
    const err = await withTimeout(new Promise<Error & { code?: number }>((resolve) => client.once('error', resolve)), 10_000, 'CONNACK refusal');
    client.end(true);
    expect(err.code).toBe(3);
    expect(balancer.server.stats.snapshot().rejected_no_backend).toBe(1);
  });
});

async function homePort(balancer: WsBalancer, home: string): Promise<number> {
  const backend = balancer.server.config.backends.find((b) => b.id === home);
  return backend!.port;
}

const missing = skipReason('mosquitto');

describe.skipIf(missing !== '')(`MQTT over WebSocket bridged to Debian mosquitto over TCP${missing}`, { timeout: 90_000 }, () => {
  it(`persistent mqtt.js clients over ws:// reconnecting ${ROUNDS} times return to their mosquitto, with session and queued messages`, async () => {
    const brokers = await Promise.all([startMosquitto(), startMosquitto()]);
    for (const m of brokers) teardown.add('mosquitto', m, (x) => x.stop());
    const ports = new Map(brokers.map((m, i) => [`mosquitto${i + 1}`, m.port]));
    const balancer = teardown.add('balancer', await startWsBalancer({ backends: [...ports].map(([name, port]) => `${name}=127.0.0.1:${port}`) }), (b) => b.close());
    const clientId = 'ws-mosquitto-1';
    // Where the client landed is read from the stick table after each CONNACK (mosquitto has no
    // events to witness); the queued messages, published on that broker directly, prove it.
    const { home, landed, sessionPresent } = await reconnectRounds(pool, 
      balancer.wsUrl,
      clientId,
      async () => (await stuckTo(balancer, clientId))!,
      async () => (await stuckTo(balancer, clientId))!,
      (name) => ports.get(name)!,
      async () => undefined,
    );
    expect(landed).toEqual(Array<string>(ROUNDS).fill(home));
    expect(sessionPresent).toEqual(Array<boolean>(ROUNDS).fill(true));
  });
});
