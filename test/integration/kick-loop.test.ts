import mqtt, { type MqttClient } from 'mqtt';
import mqttPacket, { type Packet } from 'mqtt-packet';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { startBalancer, tableEntries, type TestBalancer } from '../harness/balancer.ts';
import { skipReason } from '../harness/binaries.ts';
import { startMosquitto, type Mosquitto } from '../harness/mosquitto.ts';
import { Cleanup, logLines, waitFor } from '../harness/poll.ts';
import { RecordingBackend } from '../harness/recording-backend.ts';

/**
 * Two devices configured with one client id take each other's session in a loop: each connect
 * makes mosquitto close the other, which reconnects at once. Through a plain chain the connects
 * reaching the broker grow without end; with connect-guard first in the chain, the loop is found
 * and its newest connections are answered with CONNACK "server busy" for a growing back-off.
 * Both balancers sit in front of the same mosquitto, through a recording relay that counts the
 * CONNECTs that reached it, by client id.
 */

vi.setConfig({ testTimeout: 90_000, hookTimeout: 30_000 });

const missing = skipReason('mosquitto');
const cleanup = new Cleanup();
let broker: Mosquitto;
let relay: RecordingBackend;
let guarded: TestBalancer;
let plain: TestBalancer;

beforeAll(async () => {
  if (missing) return;
  broker = await startMosquitto();
  relay = await RecordingBackend.start({ id: 'mosq', forwardTo: { host: '127.0.0.1', port: broker.port } });
  guarded = await startBalancer({ backends: [relay.spec], select: ['connect-guard', 'stick-table', 'least-connections'] });
  plain = await startBalancer({ backends: [relay.spec] });
});
// Each test's clients (the twins reconnect for ever) and balancers stop with it.
afterEach(() => cleanup.run());
afterAll(async () => {
  await guarded?.close();
  await plain?.close();
  await relay?.close();
  await broker?.stop();
});

/** CONNECTs that reached the broker with this client id. */
function connectsAtBroker(clientId: string): number {
  let n = 0;
  for (const c of relay.connections) {
    let first: Packet | undefined;
    const parser = mqttPacket.parser({ protocolVersion: 5 });
    parser.on('packet', (p: Packet) => (first ??= p));
    parser.on('error', () => undefined);
    parser.parse(c.bytes());
    if (first?.cmd === 'connect' && first.clientId === clientId) n++;
  }
  return n;
}

/** One of the twin devices: reconnects 100 ms after every close or refusal, as an eager device would. */
function twin(balancer: TestBalancer, clientId: string, refusals: number[]): MqttClient {
  const client = mqtt.connect(balancer.url, { clientId, protocolVersion: 5, clean: false, properties: { sessionExpiryInterval: 300 }, reconnectPeriod: 100, connectTimeout: 5000, reconnectOnConnackError: true });
  client.on('error', (err) => {
    const code = (err as { code?: number }).code;
    if (typeof code === 'number') refusals.push(code);
  });
  return cleanup.add(client, (c) => c.endAsync(true));
}

describe.skipIf(missing)(`kick loops: two devices with one client id, against mosquitto${missing}`, () => {
  it('through connect-guard the connects reaching the broker stay bounded; through a plain chain they grow', async () => {
    const refusals: number[] = [];
    for (let i = 0; i < 2; i++) {
      twin(guarded, 'twin-guarded', refusals);
      twin(plain, 'twin-plain', []);
    }
    // The plain pair is the clock: its loop runs unhindered until it has made 60 connects.
    await waitFor(() => connectsAtBroker('twin-plain') >= 60, { what: () => `60 connects of the plain pair (${connectsAtBroker('twin-plain')} so far)`, timeoutMs: 60_000, intervalMs: 100 });
    const guardedConnects = connectsAtBroker('twin-guarded');
    // 5 takeovers open the loop (6 connects), then one per back-off of 2 s, 4 s, 8 s…
    expect(guardedConnects).toBeGreaterThanOrEqual(6);
    expect(guardedConnects).toBeLessThanOrEqual(15);

    // The refused devices were told "server busy" (MQTT 5 reason 0x89), by a CONNACK, not a reset.
    expect(refusals.length).toBeGreaterThan(0);
    expect(new Set(refusals)).toEqual(new Set([0x89]));
    expect(guarded.server.stats.get('rejected_kick_loop')).toBeGreaterThan(0);
    expect(guarded.server.stats.get('connect_guard_kick_loops')).toBe(1);
    // One log line names the key and where its connections came from.
    const lines = logLines(guarded.logs, { plugin: 'connect-guard' }).filter((l) => String(l.msg).startsWith('kick loop'));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 40, key: 'twin-guarded', sources: ['127.0.0.1'] });
    // `tether table show` flags it; the plain balancer has no such table.
    const [row] = await tableEntries(guarded, 'connect-guard');
    expect(row).toMatchObject({ key: 'twin-guarded', flags: expect.arrayContaining(['kick-loop']) });
    expect(row!.use).toBe(1); // one device keeps its connection: the guard refuses only newcomers
  });

  it('a source over its connect rate gets CONNACK server unavailable (3.1.1) or busy (5); the clients before it are served', async () => {
    const limited = cleanup.add(await startBalancer({ backends: [relay.spec], select: [{ use: 'connect-guard', options: { perSource: { rate: 0.01, burst: 2 } } }, 'least-connections'] }), (b) => b.close());
    const served = [];
    for (const id of ['rate-1', 'rate-2']) served.push(cleanup.add(await mqtt.connectAsync(limited.url, { clientId: id, reconnectPeriod: 0 }), (c) => c.endAsync(true)));
    expect(served.every((c) => c.connected)).toBe(true);
    const v311 = await mqtt.connectAsync(limited.url, { clientId: 'rate-3', reconnectPeriod: 0 }).then(() => 'connected', (err: { code?: number }) => err.code);
    const v5 = await mqtt.connectAsync(limited.url, { clientId: 'rate-4', protocolVersion: 5, reconnectPeriod: 0 }).then(() => 'connected', (err: { code?: number }) => err.code);
    expect([v311, v5]).toEqual([3, 0x89]);
    expect(limited.server.stats.get('rejected_rate_limited')).toBe(2);
    // The refused ones never reached the broker.
    expect(['rate-1', 'rate-2', 'rate-3', 'rate-4'].map(connectsAtBroker)).toEqual([1, 1, 0, 0]);
  });
});
