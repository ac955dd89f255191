import { startEmbeddedBrokers, type EmbeddedBroker } from '@tether/embedded-broker';
import type { Client as AedesClient } from 'aedes';
import type { MqttClient } from 'mqtt';
import { createHash, randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AedesWitness } from '../harness/traffic-aedes-witness.ts';
import { startBalancer, type TestBalancer } from '../harness/balancer.ts';
import { ClientPool, Inbox } from '../harness/traffic-mqtt-clients.ts';
import { Teardown } from '../harness/traffic-teardown.ts';
import { waitUntil } from '../harness/traffic-wait.ts';

/**
 * Traffic in both directions through Tether's splice. A "device" connects through Tether; an
 * "observer" connects directly to the broker the device landed on (the brokers are independent, so
 * it has to be that one). Device → broker is the device publishing and the observer receiving;
 * broker → device is the reverse. Payloads are binary and compared byte for byte.
 */

const MiB = 1024 * 1024;
/** Unsent bytes a socket must hold before the test calls it backed up (see the back-pressure tests). */
const BACKLOG = 8 * MiB;

const teardown = new Teardown();
const pool = new ClientPool();
let brokers: EmbeddedBroker[];
let witness: AedesWitness;
let balancer: TestBalancer;

beforeEach(async () => {
  brokers = teardown.add('brokers', await startEmbeddedBrokers(2, { cluster: false }), (bs) => Promise.all(bs.map((b) => b.close())));
  witness = teardown.add('witness', new AedesWitness(brokers), (w) => w.detach());
  balancer = teardown.add('balancer', await startBalancer({ backends: brokers.map((b) => `${b.id}=127.0.0.1:${b.port}`) }), (b) => b.close());
}, 30_000);

afterEach(async () => {
  await pool.closeAll();
  await teardown.run();
}, 30_000);

interface Pair {
  readonly device: MqttClient;
  readonly deviceInbox: Inbox;
  readonly observer: MqttClient;
  readonly observerInbox: Inbox;
  readonly home: EmbeddedBroker;
}

/** Connects `deviceId` through Tether and an observer straight to the broker that took it. */
async function connectPair(deviceId: string): Promise<Pair> {
  const deviceInbox = new Inbox();
  const landing = witness.nextLanding(deviceId);
  const { client: device } = await pool.connect(balancer.url, { clientId: deviceId, clean: true }, deviceInbox);
  const homeId = (await landing).broker;
  const homeBroker = brokers.find((b) => b.id === homeId)!;
  const observerInbox = new Inbox();
  const { client: observer } = await pool.connect(`mqtt://127.0.0.1:${homeBroker.port}`, { clientId: `${deviceId}-observer`, clean: true }, observerInbox);
  return { device, deviceInbox, observer, observerInbox, home: homeBroker };
}

/** A binary payload whose first bytes say which message it is, so a mix-up is readable in a diff. */
function payload(label: string, size: number): Buffer {
  const head = Buffer.from(`${label}|`);
  return Buffer.concat([head, randomBytes(Math.max(0, size - head.length))]);
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** Tether's "connection closed" log line for `key`, once the splice has ended (bounded poll). */
function closedLogFor(key: string): Promise<Record<string, unknown>> {
  return waitUntil(`Tether's "connection closed" line for ${key}`, () => balancer.logs.find((l) => l.msg === 'connection closed' && l.key === key && typeof l.bytesIn === 'number'), { tries: 400 });
}

describe('QoS 0, 1 and 2 through Tether, both directions', { timeout: 60_000 }, () => {
  it.each([0, 1, 2] as const)('QoS %i: 25 messages each way arrive intact, in order and at that QoS', async (qos) => {
    const deviceId = `qos${qos}-device`;
    const { device, deviceInbox, observer, observerInbox } = await connectPair(deviceId);
    // Both subscribe at QoS 2 so the delivered QoS is the published one (MQTT delivers the minimum).
    await observer.subscribeAsync(`up/${deviceId}`, { qos: 2 });
    await device.subscribeAsync(`down/${deviceId}`, { qos: 2 });

    const up = Array.from({ length: 25 }, (_, i) => payload(`up-${qos}-${i}`, 200 + i * 37));
    const down = Array.from({ length: 25 }, (_, i) => payload(`down-${qos}-${i}`, 200 + i * 41));
    // One at a time: publishAsync resolves on write (QoS 0), PUBACK (1) or PUBCOMP (2), so every
    // acknowledgement has travelled back through Tether before the next message goes.
    for (const p of up) await device.publishAsync(`up/${deviceId}`, p, { qos });
    for (const p of down) await observer.publishAsync(`down/${deviceId}`, p, { qos });

    await observerInbox.until(`${up.length} messages at the observer`, (m) => m.length >= up.length);
    await deviceInbox.until(`${down.length} messages at the device`, (m) => m.length >= down.length);
    expect(observerInbox.messages.map((m) => m.payload)).toEqual(up);
    expect(deviceInbox.messages.map((m) => m.payload)).toEqual(down);
    expect(new Set(observerInbox.messages.map((m) => m.qos))).toEqual(new Set([qos]));
    expect(new Set(deviceInbox.messages.map((m) => m.qos))).toEqual(new Set([qos]));
  });

  it('1 MiB payloads both ways, four in flight at once, at QoS 1 and 2; Tether counts the bytes', async () => {
    const deviceId = 'big-device';
    const { device, deviceInbox, observer, observerInbox } = await connectPair(deviceId);
    await observer.subscribeAsync(`up/${deviceId}/#`, { qos: 2 });
    await device.subscribeAsync(`down/${deviceId}/#`, { qos: 2 });

    const up = [1, 2, 1, 2].map((qos, i) => ({ qos: qos as 1 | 2, topic: `up/${deviceId}/${i}`, body: payload(`up-big-${i}`, MiB) }));
    const down = [1, 2, 1, 2].map((qos, i) => ({ qos: qos as 1 | 2, topic: `down/${deviceId}/${i}`, body: payload(`down-big-${i}`, MiB) }));
    // Not awaited one by one: 8 MiB in flight in both directions at once is what makes the
    // sockets on both sides of Tether fill up and wait for 'drain'.
    await Promise.all([
      ...up.map((m) => device.publishAsync(m.topic, m.body, { qos: m.qos })),
      ...down.map((m) => observer.publishAsync(m.topic, m.body, { qos: m.qos })),
    ]);
    await observerInbox.until('4 MiB at the observer', (m) => m.length >= up.length, 30_000);
    await deviceInbox.until('4 MiB at the device', (m) => m.length >= down.length, 30_000);

    // Compared by topic and hash: the messages went out concurrently, so their order is not fixed,
    // and a 1 MiB diff would be unreadable.
    const byTopic = (msgs: readonly { topic: string; payload: Buffer }[]): Record<string, string> => Object.fromEntries(msgs.map((m) => [m.topic, sha(m.payload)]));
    expect(byTopic(observerInbox.messages)).toEqual(Object.fromEntries(up.map((m) => [m.topic, sha(m.body)])));
    expect(byTopic(deviceInbox.messages)).toEqual(Object.fromEntries(down.map((m) => [m.topic, sha(m.body)])));
    expect(observerInbox.messages.map((m) => m.payload.length)).toEqual(up.map(() => MiB));

    // The splice's own byte counts: everything went through Tether, not around it.
    await pool.disconnect(device);
    const closed = await closedLogFor(deviceId);
    expect(closed.bytesIn).toBeGreaterThan(4 * MiB);
    expect(closed.bytesOut).toBeGreaterThan(4 * MiB);
  });
});

describe('back-pressure through the splice', { timeout: 90_000 }, () => {
  /**
   * The aedes-side client object of `clientId`. aedes keeps them in `clients` and gives each its own
   * flow control, pause() and resume() (lib/client.js); neither is in its typings.
   */
  type AedesClientWithFlow = AedesClient & { pause(): void; resume(): void };
  const aedesClient = (broker: EmbeddedBroker, clientId: string): AedesClientWithFlow => (broker.aedes as unknown as { clients: Record<string, AedesClientWithFlow> }).clients[clientId]!;

  it('a broker that stops reading makes the device back up; when it reads again every message arrives intact', async () => {
    const deviceId = 'bp-up-device';
    const { device, observer, observerInbox, home } = await connectPair(deviceId);
    await observer.subscribeAsync(`bp/${deviceId}`, { qos: 0 });

    // aedes's own pause: it stops reading the connection from Tether, so the kernel buffers between
    // the broker and Tether fill. A splice that honours back-pressure then stops reading from the
    // device, and the device's own socket starts holding what the kernel will not take. One
    // unsent MiB could be a write still in progress, so the proof is a backlog of BACKLOG bytes:
    // a Tether that kept reading (buffering without bound) drains each MiB within a turn of the
    // event loop, and the device would never hold that much.
    const brokerSide = aedesClient(home, deviceId);
    brokerSide.pause();
    const deviceSocket = device.stream as Socket;
    const sent: Buffer[] = [];
    // 1 MiB at a time until the backlog shows, at most 128 MiB. QoS 0 so mqtt.js writes at once
    // instead of waiting for acknowledgements that cannot come while the broker is paused.
    for (let i = 0; i < 128 && deviceSocket.writableLength < BACKLOG; i++) {
      const body = payload(`bp-up-${i}`, MiB);
      sent.push(body);
      device.publish(`bp/${deviceId}`, body, { qos: 0 });
      await new Promise((resolve) => setImmediate(resolve)); // one event-loop turn: sockets write and read
    }
    expect(deviceSocket.writableLength).toBeGreaterThanOrEqual(BACKLOG);
    expect(observerInbox.messages.length).toBeLessThan(sent.length);

    brokerSide.resume();
    await observerInbox.until(`all ${sent.length} MiB at the observer`, (m) => m.length >= sent.length, 60_000);
    expect(observerInbox.messages.map((m) => sha(m.payload))).toEqual(sent.map(sha));
  });

  it('a device that stops reading makes the broker back up; when it reads again every message arrives intact', async () => {
    const deviceId = 'bp-down-device';
    const { device, deviceInbox, observer, home } = await connectPair(deviceId);
    await device.subscribeAsync(`bp/${deviceId}`, { qos: 0 });

    // The mirror image: the device's socket stops reading (paused while idle, so mqtt.js's pipe has
    // no pending 'drain' that could resume it), and the broker's socket towards Tether must end up
    // holding a backlog, which shows Tether stopped reading from the broker.
    const deviceSocket = device.stream as Socket;
    deviceSocket.pause();
    const brokerSocket = aedesClient(home, deviceId).conn as Socket;
    const sent: Buffer[] = [];
    for (let i = 0; i < 128 && brokerSocket.writableLength < BACKLOG; i++) {
      const body = payload(`bp-down-${i}`, MiB);
      sent.push(body);
      // Resolves once the observer's socket took it; aedes forwards it on a later tick.
      await observer.publishAsync(`bp/${deviceId}`, body, { qos: 0 });
      // Until aedes has handed this message to the device's connection (bytesWritten counts what
      // is still buffered too), so the loop measures the broker's side and not the observer's.
      await waitUntil(`aedes to forward message ${i}`, () => brokerSocket.bytesWritten >= (i + 1) * MiB);
    }
    expect(brokerSocket.writableLength).toBeGreaterThanOrEqual(BACKLOG);
    expect(deviceInbox.messages.length).toBeLessThan(sent.length);

    deviceSocket.resume();
    await deviceInbox.until(`all ${sent.length} MiB at the device`, (m) => m.length >= sent.length, 60_000);
    expect(deviceInbox.messages.map((m) => sha(m.payload))).toEqual(sent.map(sha));
  });
});
