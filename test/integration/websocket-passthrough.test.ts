import type { IncomingMessage } from 'node:http';
import { startEmbeddedBrokers, type EmbeddedBroker } from '@tether/embedded-broker';
import mqtt from 'mqtt';
import { WebSocket } from 'ws';
import { afterEach, describe, expect, it } from 'vitest';
import { stuckTo } from '../harness/balancer.ts';
import { waitFor } from '../harness/poll.ts';
import { connectBytes, RawClient } from '../harness/raw-mqtt-client.ts';
import { RecordingBackend } from '../harness/recording-backend.ts';
import { AedesWitness } from '../harness/traffic-aedes-witness.ts';
import { ClientPool } from '../harness/traffic-mqtt-clients.ts';
import { Teardown } from '../harness/traffic-teardown.ts';
import { withTimeout } from '../harness/traffic-wait.ts';
import { startWsBalancer, type WsBalancer } from '../harness/websocket-balancer.ts';
import { clientFrame, parseReply, upgradeRequest } from '../harness/websocket-bytes.ts';
import { aedesReconnectRounds, ROUNDS } from '../harness/websocket-rounds.ts';

/**
 * Pass-through: backends configured with `websocket: { path }` are the brokers' own WebSocket
 * endpoints (aedes behind ws here, like the seed's brokers on 8083). Tether reads the opening to
 * find the CONNECT, sends the client's Upgrade request on (with X-Forwarded-For and Forwarded),
 * checks the broker's 101, replays the client's frames as they came and then splices bytes.
 */

const teardown = new Teardown();
const pool = new ClientPool();

afterEach(async () => {
  await pool.closeAll();
  await teardown.run();
}, 30_000);

async function setup(): Promise<{ brokers: EmbeddedBroker[]; witness: AedesWitness; balancer: WsBalancer; upgrades: IncomingMessage[] }> {
  const brokers = teardown.add('brokers', await startEmbeddedBrokers(2, { cluster: false, websocket: true }), (bs) => Promise.all(bs.map((b) => b.close())));
  const witness = teardown.add('witness', new AedesWitness(brokers), (w) => w.detach());
  const upgrades: IncomingMessage[] = [];
  for (const b of brokers) b.wss!.on('connection', (_ws, req) => upgrades.push(req));
  const backends = brokers.map((b) => ({ name: b.id, address: `127.0.0.1:${b.wsPort}`, websocket: { path: '/mqtt' } }));
  const balancer = teardown.add('balancer', await startWsBalancer({ backends }), (b) => b.close());
  return { brokers, witness, balancer, upgrades };
}

describe('MQTT over WebSocket passed through to the brokers\' WebSocket endpoints', { timeout: 90_000 }, () => {
  it(`persistent mqtt.js clients reconnecting ${ROUNDS} times land on their broker every time, with session and queued messages`, async () => {
    const { brokers, witness, balancer, upgrades } = await setup();
    const clientId = 'ws-pass-1';
    const { home, landed, sessionPresent } = await aedesReconnectRounds(pool, balancer.wsUrl, clientId, brokers, witness);
    expect(landed).toEqual(Array<string>(ROUNDS).fill(home));
    expect(sessionPresent).toEqual(Array<boolean>(ROUNDS).fill(true));
    expect(await stuckTo(balancer, clientId)).toBe(home);
    // The CONNACK was read inside the broker's frames: every remembered reconnect was checked, none missed.
    const stats = balancer.server.stats;
    expect([stats.get('stickiness_checks'), stats.get('stickiness_misses'), stats.get('connack_invalid')]).toEqual([ROUNDS, 0, 0]);
    // Each connection reached a broker's WebSocket endpoint, saying where the client is.
    expect(upgrades.length).toBe(ROUNDS + 1);
    for (const req of upgrades) {
      expect(req.url).toBe('/mqtt');
      expect(req.headers['x-forwarded-for']).toBe('127.0.0.1');
      expect(req.headers.forwarded).toBe('for=127.0.0.1;proto=http');
      expect(req.headers['sec-websocket-protocol']).toBe('mqtt');
    }
  });

  it('the broker receives the client\'s frames byte for byte, after the forwarded request', async () => {
    const brokers = teardown.add('brokers', await startEmbeddedBrokers(1, { websocket: true }), (bs) => Promise.all(bs.map((b) => b.close())));
    const recorder = teardown.add('recorder', await RecordingBackend.start({ id: 'rec', forwardTo: { host: '127.0.0.1', port: brokers[0]!.wsPort! } }), (r) => r.close());
    const balancer = teardown.add('balancer', await startWsBalancer({ backends: [{ name: 'rec', address: `127.0.0.1:${recorder.port}`, websocket: { path: '/mqtt' } }] }), (b) => b.close());
    const connect = connectBytes('byte-for-byte', 4);
    const frames = Buffer.concat([clientFrame(0x2, connect.subarray(0, 10), { fin: false }), clientFrame(0x0, connect.subarray(10))]);
    const request = upgradeRequest({ protocol: 'mqtt', headers: { 'X-Forwarded-For': '203.0.113.7', 'Sec-WebSocket-Extensions': 'permessage-deflate' } });
    const client = teardown.add('raw client', await RawClient.connect(balancer.wsPort, { parse: false }), (c) => c.destroy());
    await client.write(Buffer.concat([request, frames]));
    const reply = await waitFor(() => {
      const r = parseReply(client.received());
      return r.frames.length > 0 ? r : undefined;
    }, { what: 'the broker\'s CONNACK through Tether' });
    expect(reply.status).toBe(101);
    expect(reply.frames[0]!.payload[0]).toBe(0x20); // CONNACK
    const seen = recorder.connections[0]!.bytes();
    const headEnd = seen.indexOf('\r\n\r\n') + 4;
    const head = seen.toString('latin1', 0, headEnd);
    expect(head).toMatch(/^GET \/mqtt HTTP\/1\.1\r\n/);
    expect(head).toMatch(/\r\nX-Forwarded-For: 203\.0\.113\.7, 127\.0\.0\.1\r\n/);
    expect(head).toMatch(/\r\nForwarded: for=127\.0\.0\.1;proto=http\r\n/);
    expect(head).not.toMatch(/Sec-WebSocket-Extensions/i);
    expect(seen.subarray(headEnd).equals(frames)).toBe(true);
  });

  it('a client listing its subprotocols in another order than the listener gets the listener\'s choice, and so does the broker', async () => {
    const { balancer, upgrades } = await setup();
    // The listener prefers mqtt; a broker on `ws` picks the first the request lists.
    const client = new WebSocket(balancer.wsUrl, ['mqttv3.1', 'mqtt']);
    const messages: Buffer[] = [];
    client.on('message', (data: Buffer) => messages.push(data));
    try {
      await withTimeout(new Promise<void>((resolve, reject) => client.once('open', resolve).once('error', reject)), 10_000, 'the 101');
      expect(client.protocol).toBe('mqtt');
      client.send(connectBytes('order-1', 4));
      // A broker may send the CONNACK in several messages: MQTT over WebSocket is a byte stream.
      await waitFor(() => Buffer.concat(messages).length >= 4, { what: 'the CONNACK through pass-through' });
      expect([...Buffer.concat(messages).subarray(0, 4)]).toEqual([0x20, 0x02, 0x00, 0x00]);
    } finally {
      client.terminate();
    }
    expect(upgrades.at(-1)!.headers['sec-websocket-protocol']).toBe('mqtt');
    expect(balancer.server.stats.get('upstream_connect_failures')).toBe(0);
  });

  it('a plain TCP client is never sent to a WebSocket endpoint: with only those, it gets CONNACK "server unavailable"', async () => {
    const { balancer } = await setup();
    const client = mqtt.connect(balancer.url, { clientId: 'tcp-on-ws-only', reconnectPeriod: 0, connectTimeout: 10_000 });
    const err = await withTimeout(new Promise<Error & { code?: number }>((resolve) => client.once('error', resolve)), 10_000, 'CONNACK refusal');
    client.end(true);
    expect(err.code).toBe(3);
    const line = await waitFor(() => balancer.logs.find((l) => l.msg === 'connection rejected' && l.reason === 'no_backend'), { what: 'the refusal in the log' });
    expect(String(line.err)).toMatch(/all WebSocket endpoints \(pass-through\), which plain MQTT clients cannot use/);
  });

  it('a broker that refuses the upgrade is a failed connect: the client goes to another backend', async () => {
    const brokers = teardown.add('brokers', await startEmbeddedBrokers(1, { websocket: true }), (bs) => Promise.all(bs.map((b) => b.close())));
    const backends = [
      // Wrong path on the broker: ws answers 400, Tether tries the next backend.
      { name: 'wrong-path', address: `127.0.0.1:${brokers[0]!.wsPort}`, websocket: { path: '/nothing-here' } },
      { name: 'right', address: `127.0.0.1:${brokers[0]!.wsPort}`, websocket: { path: '/mqtt' } },
    ];
    const balancer = teardown.add('balancer', await startWsBalancer({ backends, select: ['round-robin'], retries: 1 }), (b) => b.close());
    for (let i = 0; i < 2; i++) {
      const { connack } = await pool.connect(balancer.wsUrl, { clientId: `retry-${i}`, clean: true });
      expect(connack.returnCode).toBe(0);
    }
    expect(balancer.logs.some((l) => l.msg === 'backend connect failed, trying another' && /WebSocket upgrade/.test(String(l.err)))).toBe(true);
  });
});
