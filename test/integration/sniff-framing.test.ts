import { startEmbeddedBrokers } from '@tether/embedded-broker';
import type { IConnackPacket, IPublishPacket, ISubackPacket } from 'mqtt-packet';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { startBalancer, type TestBalancer } from '../harness/balancer.ts';
import { hasBinary, skipReason } from '../harness/binaries.ts';
import { startMosquitto } from '../harness/mosquitto.ts';
import { Cleanup, counterChanges, waitFor, waitForLog } from '../harness/poll.ts';
import { connectBytes, packetBytes, RawClient, type ProtocolVersion } from '../harness/raw-mqtt-client.ts';
import { RecordingBackend } from '../harness/recording-backend.ts';

/**
 * How Tether frames the first packet: a CONNECT may arrive in any number of TCP segments, or
 * together with the packets after it, and every byte must reach the broker exactly once and in
 * order. The only backend is a recording relay in front of a real broker, so each test sees both
 * the exact bytes Tether sent and the broker's answers to them.
 *
 * aedes speaks MQTT 3.1 and 3.1.1 only (it refuses level 5), so MQTT 5 runs against mosquitto.
 */

// Generous bounds for a loaded 2-core machine (the test project does not inherit the root
// vitest.config's testTimeout; every wait inside a test has its own, shorter bound).
vi.setConfig({ testTimeout: 60_000, hookTimeout: 30_000 });

interface Broker {
  readonly port: number;
  close(): Promise<void>;
}

const suites: { name: string; versions: readonly ProtocolVersion[]; skip: boolean; start: () => Promise<Broker> }[] = [
  {
    name: 'aedes',
    versions: [4, 3],
    skip: false,
    start: async () => (await startEmbeddedBrokers(1, { cluster: false }))[0]!,
  },
  {
    name: `mosquitto${skipReason('mosquitto')}`,
    versions: [5],
    skip: !hasBinary('mosquitto'),
    start: async () => {
      const m = await startMosquitto();
      return { port: m.port, close: () => m.stop() };
    },
  },
];

describe.each(suites)('sniff framing through a recording relay to $name', ({ versions, skip, start }) => {
  let broker: Broker;
  let recorder: RecordingBackend;
  let balancer: TestBalancer;
  const cleanup = new Cleanup();

  beforeAll(async () => {
    if (skip) return;
    broker = await start();
    recorder = await RecordingBackend.start({ id: 'rec', forwardTo: { host: '127.0.0.1', port: broker.port } });
    // A long sniff timeout: every outcome here must come from framing, never from the timer.
    balancer = await startBalancer({ backends: [recorder.spec], 'sniff.timeout': '20s', 'sniff.maxBytes': 4096 });
  });
  afterEach(async () => {
    await cleanup.run();
    // Let the closed clients' spliced connections finish, so the next test's counters start quiet.
    if (!skip) await waitFor(() => balancer.server.stats.get('connections_active') === 0, { what: 'spliced connections to close' });
  });
  afterAll(async () => {
    await balancer?.close();
    await recorder?.close();
    await broker?.close();
  });

  async function client(version: ProtocolVersion): Promise<RawClient> {
    return cleanup.add(await RawClient.connect(balancer.port, { parse: version }), (c) => c.destroy());
  }

  /**
   * A session opening as one byte stream: a CONNECT large enough that its remaining length takes
   * two bytes (so splits can fall inside the fixed header), then a SUBSCRIBE and a QoS 1 PUBLISH
   * to the subscribed topic, which the broker must answer with CONNACK, SUBACK, PUBACK and the
   * message itself.
   */
  function session(clientId: string, version: ProtocolVersion) {
    // MQTT 3.1 brokers may refuse client ids over 23 characters.
    const id = version === 3 ? clientId.slice(0, 23) : clientId;
    const topic = `framing/${id}`;
    const payload = Buffer.from(`payload of ${id}`);
    const connect = connectBytes(id, version, {
      username: 'user-'.repeat(8),
      password: Buffer.from('secret-'.repeat(8)),
      will: { topic: `${topic}/will`, payload: Buffer.from('gone'), qos: 0, retain: false },
      ...(version === 5 ? { properties: { sessionExpiryInterval: 0, userProperties: { note: 'x'.repeat(40) } } } : {}),
    });
    const subscribe = packetBytes({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos: 1 }] }, version);
    const publish = packetBytes({ cmd: 'publish', messageId: 2, topic, payload, qos: 1, dup: false, retain: false }, version);
    expect(connect.length).toBeGreaterThan(130); // so the remaining length takes two bytes
    return { connect, stream: Buffer.concat([connect, subscribe, publish]), topic, payload };
  }

  /** The broker answered the whole session, so what it parsed was what the client sent. */
  async function expectBrokerAnswered(c: RawClient, s: ReturnType<typeof session>, version: ProtocolVersion): Promise<void> {
    const connack = (await c.waitForPacket('connack')) as IConnackPacket;
    expect(version === 5 ? connack.reasonCode : connack.returnCode).toBe(0);
    const suback = (await c.waitForPacket('suback')) as ISubackPacket;
    expect(suback.granted).toEqual([1]);
    await c.waitForPacket('puback');
    const message = (await c.waitForPacket('publish')) as IPublishPacket;
    expect(message.topic).toBe(s.topic);
    expect(Buffer.from(message.payload)).toEqual(s.payload);
    expect(c.parseErrors).toEqual([]);
  }

  /** Tether opened exactly one backend connection for the client and it carries exactly its bytes. */
  async function expectRelayedExactly(connectionIndex: number, stream: Buffer): Promise<void> {
    const upstream = await waitFor(() => recorder.connections[connectionIndex], { what: 'Tether to connect to the backend' });
    await waitFor(() => upstream.length >= stream.length, { what: () => `${stream.length} bytes at the backend (it has ${upstream.length})` });
    expect(upstream.bytes().equals(stream)).toBe(true);
    expect(recorder.connections.length).toBe(connectionIndex + 1);
  }

  it.skipIf(skip).each(versions)('MQTT level %i: CONNECT, SUBSCRIBE and PUBLISH written one byte per write', async (version) => {
    const s = session(`one-byte-v${version}`, version);
    const before = recorder.connections.length;
    const c = await client(version);
    for (let i = 0; i < s.stream.length; i++) {
      // Until the CONNECT's last byte is written Tether cannot hold a complete CONNECT, so it must
      // not have opened a backend connection (many event-loop turns have passed by now).
      if (i === s.connect.length - 1) expect(recorder.connections.length).toBe(before);
      await c.write(s.stream.subarray(i, i + 1));
    }
    await expectBrokerAnswered(c, s, version);
    await expectRelayedExactly(before, s.stream);
  });

  it.skipIf(skip)('random split points, across the fixed header and the CONNECT/SUBSCRIBE boundary (seeded)', async () => {
    const seed = 0x7e7e;
    const random = mulberry32(seed);
    for (let round = 0; round < 20; round++) {
      const version = versions[round % versions.length]!;
      const s = session(`split-${round}-${'k'.repeat(Math.floor(random() * 40))}`, version);
      const cuts = randomCuts(s.stream.length, 1 + Math.floor(random() * 12), random);
      const context = `seed ${seed}, round ${round}, MQTT level ${version}, cuts [${cuts.join(', ')}]`;
      const before = recorder.connections.length;
      const c = await client(version);
      try {
        await c.writeSplit(s.stream, cuts);
        await expectBrokerAnswered(c, s, version);
        await expectRelayedExactly(before, s.stream);
      } catch (err) {
        throw new Error(`${context}: ${(err as Error).message}`, { cause: err });
      }
      c.destroy();
    }
  });

  it.skipIf(skip).each(versions)('MQTT level %i: a CONNECT coalesced with SUBSCRIBE and PUBLISH in one write', async (version) => {
    const s = session(`coalesced-v${version}`, version);
    const before = recorder.connections.length;
    const c = await client(version);
    await c.write(s.stream);
    await expectBrokerAnswered(c, s, version);
    await expectRelayedExactly(before, s.stream);
  });

  it.skipIf(skip)('a CONNECT that stops one byte short and closes never reaches a backend', async () => {
    const version = versions[0]!;
    const s = session('short-by-one', version);
    const before = recorder.connections.length;
    const stats = balancer.server.stats.snapshot();
    const c = await client(version);
    const partial = s.connect.subarray(0, s.connect.length - 1);
    for (let i = 0; i < partial.length; i++) await c.write(partial.subarray(i, i + 1));
    c.socket.end();
    await c.waitClosed();
    // The rejection says how many bytes Tether had read: all of them, so the missing byte (not a
    // lost one) is why it never connected upstream.
    const line = await waitForLog(balancer.logs, { msg: 'connection rejected', reason: 'client_closed_early' });
    expect(line.err).toContain(`(${partial.length} bytes received)`);
    expect(counterChanges(stats, balancer.server.stats.snapshot())).toEqual({
      connections_accepted: 1, connections_rejected: 1, rejected_client_closed_early: 1,
    });
    expect(recorder.connections.length).toBe(before);
  });

  it.skipIf(skip)('an invalid CONNECT written one byte per write is rejected once complete, with no backend connection', async () => {
    const version = versions[0]!;
    const connect = connectBytes('bad-name', version);
    // The protocol name follows the fixed header (2 bytes) and its own length (2 bytes).
    connect.write(version === 3 ? 'MQIsdX' : 'MQTX', 4, 'latin1');
    const before = recorder.connections.length;
    const stats = balancer.server.stats.snapshot();
    const c = await client(version);
    for (let i = 0; i < connect.length; i++) await c.write(connect.subarray(i, i + 1));
    await c.waitClosed('Tether to close the connection of an invalid CONNECT');
    const line = await waitForLog(balancer.logs, { msg: 'connection rejected', reason: 'sniff_invalid' });
    expect(line.code).toBe('TETHER_ERR_SNIFF_INVALID');
    expect(line.err).toMatch(/protocolId/i);
    expect(counterChanges(stats, balancer.server.stats.snapshot())).toEqual({
      connections_accepted: 1, connections_rejected: 1, rejected_sniff_invalid: 1,
    });
    expect(recorder.connections.length).toBe(before);
  });
});

/** Small seeded PRNG (mulberry32), so a failing split pattern can be replayed from its seed. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Up to `count` distinct cut offsets in 1..length-1, sorted; half the time one falls in the fixed header. */
function randomCuts(length: number, count: number, random: () => number): number[] {
  const cuts = new Set<number>();
  if (random() < 0.5) cuts.add(1 + Math.floor(random() * 3));
  for (let i = 0; i < count * 4 && cuts.size < count; i++) cuts.add(1 + Math.floor(random() * (length - 1)));
  return [...cuts].sort((a, b) => a - b);
}
