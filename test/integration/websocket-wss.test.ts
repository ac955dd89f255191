import { readFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { startEmbeddedBrokers, type EmbeddedBroker } from '@tether/embedded-broker';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startBalancer, stuckTo, tableEntries, type TestBalancer } from '../harness/balancer.ts';
import { skipReason } from '../harness/binaries.ts';
import { createTestPki, type TestPki } from '../harness/tls-certs.ts';
import { AedesWitness } from '../harness/traffic-aedes-witness.ts';
import { ClientPool } from '../harness/traffic-mqtt-clients.ts';
import { Teardown } from '../harness/traffic-teardown.ts';
import { aedesReconnectRounds, ROUNDS } from '../harness/websocket-rounds.ts';

/**
 * wss://: the WebSocket listener composed with the tls transport (listeners: [{ transports: [tls],
 * websocket }]). TLS is terminated first, then the opening is read from the decrypted stream, so
 * everything TLS gives a TCP client (SNI certificates, mutual TLS, the cert-cn key) holds here too.
 */

const missing = skipReason('openssl');
const teardown = new Teardown();
const pool = new ClientPool();
let pki: TestPki;

beforeAll(async () => {
  if (missing === '') pki = await createTestPki();
});
afterAll(() => pki?.remove());
afterEach(async () => {
  await pool.closeAll();
  await teardown.run();
}, 30_000);

async function wssBalancer(backends: unknown[], tls: Record<string, unknown>, extra: Record<string, unknown> = {}): Promise<{ balancer: TestBalancer; url: string }> {
  const listener = { name: 'wss', address: '127.0.0.1:0', transports: [{ use: 'tls', options: { cert: pki.alpha.cert, key: pki.alpha.key, ...tls } }], websocket: true };
  const balancer = teardown.add('balancer', await startBalancer({ backends, listeners: [listener], ...extra }), (b) => b.close());
  return { balancer, url: `wss://localhost:${balancer.server.addresses.get('wss')!.port}/mqtt` };
}

describe.skipIf(missing !== '')(`MQTT over wss:// (tls transport + WebSocket listener)${missing}`, { timeout: 90_000 }, () => {
  it(`bridged: persistent mqtt.js clients over wss:// reconnecting ${ROUNDS} times land on their broker with session and queued messages`, async () => {
    const brokers = teardown.add('brokers', await startEmbeddedBrokers(2, { cluster: false }), (bs) => Promise.all(bs.map((b) => b.close())));
    const witness = teardown.add('witness', new AedesWitness(brokers), (w) => w.detach());
    const { balancer, url } = await wssBalancer(brokers.map((b) => `${b.id}=127.0.0.1:${b.port}`), {});
    const ca = readFileSync(pki.ca.cert);
    const clientId = 'wss-sticky-1';
    const tlsPool = withOptions(pool, { ca });
    const { home, landed, sessionPresent } = await aedesReconnectRounds(tlsPool, url, clientId, brokers, witness);
    expect(landed).toEqual(Array<string>(ROUNDS).fill(home));
    expect(sessionPresent).toEqual(Array<boolean>(ROUNDS).fill(true));
    expect(await stuckTo(balancer, clientId)).toBe(home);
  });

  it('mutual TLS: the cert-cn key keeps two client ids of one device certificate on one broker', async () => {
    const brokers = teardown.add('brokers', await startEmbeddedBrokers(2, { cluster: false }), (bs) => Promise.all(bs.map((b) => b.close())));
    const { balancer, url } = await wssBalancer(brokers.map((b) => `${b.id}=127.0.0.1:${b.port}`), { ca: pki.ca.cert, verify: 'required' }, { key: ['cert-cn', 'client-id'] });
    const device = { ca: readFileSync(pki.ca.cert), cert: readFileSync(pki.device1.cert), key: readFileSync(pki.device1.key) };
    const a = await pool.connect(url, { clientId: 'device-1-a', clean: true, ...device });
    const b = await pool.connect(url, { clientId: 'device-1-b', clean: true, ...device });
    expect([a.connack.returnCode, b.connack.returnCode]).toEqual([0, 0]);
    const entries = await tableEntries(balancer);
    expect(entries.map((e) => e.key)).toEqual(['device-1']);
    expect(entries[0]!.use).toBe(2);
    // Without a certificate the TLS handshake itself is refused: no WebSocket opening is read.
    await expect(pool.connect(url, { clientId: 'no-cert', clean: true, ca: device.ca }, undefined, 5000)).rejects.toThrow();
  });

  it('pass-through over wss: the broker\'s WebSocket endpoint gets the Upgrade with Forwarded proto=https', async () => {
    const brokers: EmbeddedBroker[] = teardown.add('brokers', await startEmbeddedBrokers(1, { websocket: true }), (bs) => Promise.all(bs.map((b) => b.close())));
    const upgrades: IncomingMessage[] = [];
    brokers[0]!.wss!.on('connection', (_ws, req) => upgrades.push(req));
    const { url } = await wssBalancer([{ name: 'b1', address: `127.0.0.1:${brokers[0]!.wsPort}`, websocket: { path: '/mqtt' } }], {});
    const { client, connack } = await pool.connect(url, { clientId: 'wss-pass', clean: true, ca: readFileSync(pki.ca.cert) });
    expect(connack.returnCode).toBe(0);
    await client.subscribeAsync('wss/pass', { qos: 1 });
    const got = new Promise<string>((resolve) => client.once('message', (_t, p) => resolve(p.toString())));
    await client.publishAsync('wss/pass', 'through', { qos: 1 });
    expect(await got).toBe('through');
    expect(upgrades.map((r) => r.headers.forwarded)).toEqual(['for=127.0.0.1;proto=https']);
  });
});

/** The pool, with TLS options added to every connect (the CA that signed Tether's certificate). */
function withOptions(base: ClientPool, extra: Record<string, unknown>): ClientPool {
  return new Proxy(base, {
    get(target, prop, receiver) {
      if (prop === 'connect') return (url: string, options: Record<string, unknown>, ...rest: unknown[]) => target.connect(url, { ...options, ...extra }, ...(rest as []));
      const value = Reflect.get(target, prop, receiver) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}
