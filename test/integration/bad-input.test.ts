import { startEmbeddedBrokers, type EmbeddedBroker } from '@tether/embedded-broker';
import mqtt, { type MqttClient } from 'mqtt';
import mqttPacket, { type Packet } from 'mqtt-packet';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { startBalancer, type TestBalancer } from '../harness/balancer.ts';
import { Cleanup, counterChanges, logLines, waitFor, waitForLog, within } from '../harness/poll.ts';
import { connectBytes, packetBytes, RawClient } from '../harness/raw-mqtt-client.ts';
import { RecordingBackend } from '../harness/recording-backend.ts';

/**
 * Input that is not a usable MQTT CONNECT must close only its own connection, with the right
 * reason counter and a log line, before any backend connection is opened; meanwhile a good client
 * keeps working and the balancer keeps accepting. The backend is a recording relay in front of a
 * real aedes broker: good clients get real answers, and the recording proves bad ones never
 * reached it.
 */

// Generous bounds for a loaded 2-core machine (the test project does not inherit the root
// vitest.config's testTimeout; every wait inside a test has its own, shorter bound).
vi.setConfig({ testTimeout: 60_000, hookTimeout: 30_000 });

const MAX_BYTES = 1024;

let broker: EmbeddedBroker;
let recorder: RecordingBackend;
const cleanup = new Cleanup();

beforeAll(async () => {
  [broker] = (await startEmbeddedBrokers(1, { cluster: false })) as [EmbeddedBroker];
  recorder = await RecordingBackend.start({ id: 'rec', forwardTo: { host: '127.0.0.1', port: broker.port } });
});
afterEach(() => cleanup.run());
afterAll(async () => {
  await recorder?.close();
  await broker?.close();
});

/** A round trip through the broker on an existing mqtt.js client: publish QoS 1, receive it back. */
async function roundTrip(client: MqttClient, topic: string, text: string): Promise<void> {
  let onMessage: ((t: string, payload: Buffer) => void) | undefined;
  const received = new Promise<void>((resolve) => {
    onMessage = (t, payload) => {
      if (t === topic && payload.toString() === text) resolve();
    };
    client.on('message', onMessage);
  });
  try {
    await client.publishAsync(topic, text, { qos: 1 });
    await within(received, `message "${text}" back on ${topic}`);
  } finally {
    client.off('message', onMessage!);
  }
}

/** A new client through the balancer that connects, subscribes, gets its own message back and leaves. */
async function freshGoodSession(balancer: TestBalancer, clientId: string): Promise<void> {
  const client = cleanup.add(await mqtt.connectAsync(balancer.url, { clientId, reconnectPeriod: 0, connectTimeout: 10_000 }), (c) => c.endAsync(true));
  const topic = `good/${clientId}`;
  await client.subscribeAsync(topic, { qos: 1 });
  await roundTrip(client, topic, `hello from ${clientId}`);
  await client.endAsync();
}

/** The client id of the CONNECT a recorded backend connection starts with. */
function firstClientId(bytes: Buffer): string | undefined {
  let first: Packet | undefined;
  const parser = mqttPacket.parser();
  parser.on('packet', (p: Packet) => (first ??= p));
  parser.on('error', () => undefined);
  parser.parse(bytes);
  return first?.cmd === 'connect' ? first.clientId : undefined;
}

/** Every backend connection opened since index `from` came from a good client (id `good-*`). */
function expectOnlyGoodClientsReachedBackend(from: number): void {
  const ids = recorder.connections.slice(from).map((c) => firstClientId(c.bytes()));
  for (const id of ids) expect(id).toMatch(/^good-/);
}

/** The fixed header of a CONNECT that declares `remaining` bytes, and nothing after it. */
function connectHeaderOnly(remaining: number): Buffer {
  const bytes = [0x10];
  let n = remaining;
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    bytes.push(byte);
  } while (n > 0);
  return Buffer.from(bytes);
}

function withByte(bytes: Buffer, offset: number, change: (b: number) => number): Buffer {
  const copy = Buffer.from(bytes);
  copy[offset] = change(copy[offset]!);
  return copy;
}

/** `connect` with its last bytes (the end of its last field) replaced by `bytes`. */
function withLastBytes(connect: Buffer, bytes: number[]): Buffer {
  const copy = Buffer.from(connect);
  copy.set(bytes, copy.length - bytes.length);
  return copy;
}

/** `connect` (a one-byte remaining length) with `extra` inside its remaining length. */
function withTrailingBytes(connect: Buffer, extra: Buffer): Buffer {
  return Buffer.concat([Buffer.from([connect[0]!, connect[1]! + extra.length]), connect.subarray(2), extra]);
}

/** `connect` (a one-byte remaining length) with that length written in two bytes. */
function withLongRemainingLength(connect: Buffer): Buffer {
  return Buffer.concat([Buffer.from([connect[0]!, connect[1]! | 0x80, 0x00]), connect.subarray(2)]);
}

const validConnect = connectBytes('bad-client', 4);
// Offsets in a 3.1.1 CONNECT: fixed header (2), protocol name length (2) and "MQTT" (4), level, flags.
const LEVEL = 8;
const FLAGS = 9;

/** The start of a TLS 1.2/1.3 ClientHello record, as a TLS client sends to a plain MQTT port. */
const tlsClientHello = Buffer.concat([
  Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]),
  Buffer.alloc(32, 0xab), // "random"
  Buffer.from([0x20]), Buffer.alloc(32, 0xcd), // session id
  Buffer.from([0x00, 0x04, 0x13, 0x01, 0x13, 0x02]), // cipher suites
]);

interface BadCase {
  readonly name: string;
  readonly bytes: Buffer;
  readonly reason: string;
  readonly err: RegExp;
  /** After writing: wait for Tether to close (default), or end / reset the connection ourselves. */
  readonly then?: 'await-close' | 'end' | 'reset';
}

const cases: BadCase[] = [
  { name: 'an HTTP request', bytes: Buffer.from('GET /mqtt HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n\r\n'), reason: 'sniff_invalid', err: /HTTP/ },
  { name: 'a TLS ClientHello', bytes: tlsClientHello, reason: 'sniff_invalid', err: /TLS/ },
  {
    name: 'a PUBLISH as first packet',
    bytes: packetBytes({ cmd: 'publish', topic: 'a/b', payload: Buffer.from('x'), qos: 0, dup: false, retain: false }),
    reason: 'sniff_invalid',
    err: /PUBLISH/,
  },
  { name: 'a CONNECT with a bad protocol name', bytes: withByte(validConnect, 7, () => 0x58 /* MQTX */), reason: 'sniff_invalid', err: /protocolId/i },
  { name: 'a CONNECT with protocol level 9', bytes: withByte(validConnect, LEVEL, () => 9), reason: 'sniff_invalid', err: /protocol version/i },
  { name: 'a CONNECT with the reserved connect flag set', bytes: withByte(validConnect, FLAGS, (b) => b | 0x01), reason: 'sniff_invalid', err: /flag bit 0/i },
  { name: 'a CONNECT with reserved fixed-header flags', bytes: withByte(validConnect, 0, () => 0x11), reason: 'sniff_invalid', err: /reserved flag/i },
  // What mqtt-packet parses but the specification calls malformed (sniff.strict, the default).
  { name: 'a CONNECT whose client id is not UTF-8', bytes: withLastBytes(connectBytes('bad'), [0xc3, 0x28]), reason: 'connect_utf8', err: /client identifier is not well-formed UTF-8/ },
  { name: 'a CONNECT with bytes after its last field', bytes: withTrailingBytes(validConnect, Buffer.from('xyz')), reason: 'connect_trailing_bytes', err: /3 bytes after the last field/ },
  { name: 'a CONNECT whose remaining length is not in its shortest form', bytes: withLongRemainingLength(validConnect), reason: 'connect_not_shortest', err: /remaining length is not in its shortest form/ },
  { name: 'a remaining length of five bytes', bytes: Buffer.from([0x10, 0xff, 0xff, 0xff, 0xff, 0x7f]), reason: 'sniff_invalid', err: /remaining length/i },
  // Only the header is sent and the sniff timeout is long: a close can only come from the header.
  { name: 'a CONNECT header declaring more than sniff.maxBytes', bytes: connectHeaderOnly(MAX_BYTES * 5), reason: 'sniff_too_large', err: new RegExp(`exceeds sniff.maxBytes \\(${MAX_BYTES}\\)`) },
  { name: 'half a CONNECT, then a clean close', bytes: validConnect.subarray(0, 9), reason: 'client_closed_early', err: /\(9 bytes received\)/, then: 'end' },
  { name: 'half a CONNECT, then a reset', bytes: validConnect.subarray(0, 9), reason: 'client_reset', err: /ECONNRESET|reset/i, then: 'reset' },
];

describe('bad first packets close only their own connection', () => {
  let balancer: TestBalancer;
  let steady: MqttClient;
  let steadyCloses = 0;

  beforeAll(async () => {
    // A long sniff timeout, so each rejection below is visibly immediate: a sniffer that waited for
    // more bytes would end in sniff_timeout, a different counter.
    balancer = await startBalancer({ backends: [recorder.spec], 'sniff.timeout': '30s', 'sniff.maxBytes': MAX_BYTES });
    steady = await mqtt.connectAsync(balancer.url, { clientId: 'good-steady', reconnectPeriod: 0, connectTimeout: 10_000 });
    steady.on('close', () => steadyCloses++);
    await steady.subscribeAsync('good/steady', { qos: 1 });
  });
  afterAll(async () => {
    await steady?.endAsync(true);
    await balancer?.close();
  });

  it.each(cases)('$name -> $reason', async ({ bytes, reason, err, then = 'await-close' }) => {
    // Start from quiet counters: the previous test's good client may still be closing.
    await waitFor(() => balancer.server.stats.get('connections_active') === 1, { what: 'only the steady client to be spliced' });
    const stats = balancer.server.stats.snapshot();
    const backendConnections = recorder.connections.length;
    const rejectedLogs = logLines(balancer.logs, { msg: 'connection rejected', reason }).length;

    const badClient = async (): Promise<void> => {
      const bad = cleanup.add(await RawClient.connect(balancer.port, { parse: false }), (c) => c.destroy());
      await bad.write(bytes);
      if (then !== 'await-close') {
        // Close only once Tether has accepted the socket, so the close happens mid-sniff rather
        // than in the listen queue.
        await waitFor(() => balancer.server.stats.get('connections_accepted') > (stats.connections_accepted ?? 0), { what: 'Tether to accept the connection' });
      }
      if (then === 'end') bad.socket.end();
      if (then === 'reset') bad.socket.resetAndDestroy();
      await bad.waitClosed('the bad connection to close');
      // Tether never answers bad input with data (no CONNACK for what is not a valid CONNECT).
      expect(bad.received().length).toBe(0);
    };
    // The good client does a round trip while the bad connection is being handled.
    await Promise.all([badClient(), roundTrip(steady, 'good/steady', `during ${reason} ${bytes.length}`)]);

    const line = await waitForLog(balancer.logs, { msg: 'connection rejected', reason }, rejectedLogs + 1);
    expect(line.level).toBe(40); // warn: a client's fault, not Tether's
    // Node forgets a reset socket's peer address before Tether logs the rejection, so no `remote` there.
    if (then !== 'reset') expect(line.remote).toBe('127.0.0.1');
    expect(String(line.err)).toMatch(err);
    await waitFor(() => balancer.server.stats.get(`rejected_${reason}`) > (stats[`rejected_${reason}`] ?? 0), { what: `counter rejected_${reason}` });
    expect(counterChanges(stats, balancer.server.stats.snapshot())).toEqual({
      connections_accepted: 1, connections_rejected: 1, [`rejected_${reason}`]: 1,
    });
    // The rejection is final, so no backend connection can still be on its way.
    expect(recorder.connections.length).toBe(backendConnections);

    // The long-lived client was never disturbed, and new clients are still accepted and served.
    await roundTrip(steady, 'good/steady', `after ${reason} ${bytes.length}`);
    expect(steadyCloses).toBe(0);
    await freshGoodSession(balancer, `good-after-${reason}-${bytes.length}`);
    expectOnlyGoodClientsReachedBackend(backendConnections);
  });
});

describe('a client that does not send its CONNECT in time', () => {
  let balancer: TestBalancer;

  beforeAll(async () => {
    balancer = await startBalancer({ backends: [recorder.spec], 'sniff.timeout': '300ms', 'sniff.maxBytes': MAX_BYTES });
  });
  afterAll(() => balancer?.close());

  it.each([
    { name: 'a silent client', bytes: Buffer.alloc(0) },
    { name: 'a client that stalls after part of its CONNECT', bytes: validConnect.subarray(0, 12) },
  ])('$name is closed with sniff_timeout while a good client is served', async ({ bytes }) => {
    const stats = balancer.server.stats.snapshot();
    const backendConnections = recorder.connections.length;
    const timeouts = logLines(balancer.logs, { msg: 'connection rejected', reason: 'sniff_timeout' }).length;

    const stalled = cleanup.add(await RawClient.connect(balancer.port, { parse: false }), (c) => c.destroy());
    if (bytes.length > 0) await stalled.write(bytes);
    // While the stalled client holds its connection open, a good one connects and is served.
    await freshGoodSession(balancer, `good-while-stalled-${bytes.length}`);
    await stalled.waitClosed('Tether to time the stalled client out');

    const line = await waitForLog(balancer.logs, { msg: 'connection rejected', reason: 'sniff_timeout' }, timeouts + 1);
    expect(line.code).toBe('TETHER_ERR_SNIFF_TIMEOUT');
    expect(String(line.err)).toContain(`(${bytes.length} bytes received)`);
    const changes = counterChanges(stats, balancer.server.stats.snapshot());
    expect(changes.rejected_sniff_timeout).toBe(1);
    expect(changes.connections_rejected).toBe(1);
    expect(changes.connections_accepted).toBe(2); // the stalled client and the good one
    expect(changes.connections_spliced).toBe(1); // only the good one
    expect(stalled.received().length).toBe(0);
    // Exactly one backend connection: the good client's.
    expect(recorder.connections.length).toBe(backendConnections + 1);
    expectOnlyGoodClientsReachedBackend(backendConnections);
  });
});
