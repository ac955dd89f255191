import { startEmbeddedBrokers, type EmbeddedBroker } from '@tether/embedded-broker';
import mqtt from 'mqtt';
import mqttPacket from 'mqtt-packet';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { Cleanup, counterChanges, logLines, waitFor, waitForLog } from '../harness/poll.ts';
import { connectBytes, packetBytes, RawClient } from '../harness/raw-mqtt-client.ts';
import { RecordingBackend } from '../harness/recording-backend.ts';
import { startWsBalancer, type WsBalancer } from '../harness/websocket-balancer.ts';
import { clientFrame, closeCode, parseReply, upgradeRequest } from '../harness/websocket-bytes.ts';

/**
 * Bad WebSocket openings: each is answered (an HTTP error before the upgrade, a Close frame after
 * it), closed, logged with its reason and counted, and never reaches a backend; meanwhile a good
 * WebSocket client keeps working. The backend records every byte in front of a real aedes.
 */

vi.setConfig({ testTimeout: 60_000, hookTimeout: 30_000 });

const MAX_BYTES = 1024;
const BINARY = 0x2;
const TEXT = 0x1;
const PING = 0x9;

let broker: EmbeddedBroker;
let recorder: RecordingBackend;
let balancer: WsBalancer;
const cleanup = new Cleanup();

beforeAll(async () => {
  [broker] = (await startEmbeddedBrokers(1, { cluster: false })) as [EmbeddedBroker];
  recorder = await RecordingBackend.start({ id: 'rec', forwardTo: { host: '127.0.0.1', port: broker.port } });
  // A long sniff timeout: every rejection below must come from the bytes, not the clock.
  balancer = await startWsBalancer({ backends: [recorder.spec], 'sniff.timeout': '30s', 'sniff.maxBytes': MAX_BYTES });
});
afterEach(() => cleanup.run());
afterAll(async () => {
  await balancer?.close();
  await recorder?.close();
  await broker?.close();
});

interface Case {
  readonly name: string;
  readonly bytes: () => Buffer;
  readonly reason: string;
  /** The HTTP status, or 101 and the Close frame's code. */
  readonly status: number;
  readonly close?: number;
}

const upgraded = (...frames: Buffer[]): Buffer => Buffer.concat([upgradeRequest({ protocol: 'mqtt' }), ...frames]);

const cases: Case[] = [
  { name: 'a plain HTTP GET', bytes: () => Buffer.from('GET /mqtt HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'), reason: 'ws_not_upgrade', status: 426 },
  { name: 'an upgrade on another path', bytes: () => upgradeRequest({ path: '/ws', protocol: 'mqtt' }), reason: 'ws_wrong_path', status: 404 },
  { name: 'an upgrade without a subprotocol', bytes: () => upgradeRequest({}), reason: 'ws_bad_subprotocol', status: 400 },
  { name: 'an upgrade with another subprotocol', bytes: () => upgradeRequest({ protocol: 'wamp.2.json' }), reason: 'ws_bad_subprotocol', status: 400 },
  { name: 'an upgrade with oversized headers', bytes: () => upgradeRequest({ protocol: 'mqtt', headers: { Cookie: 'x'.repeat(9000) } }), reason: 'ws_headers_too_large', status: 431 },
  { name: 'MQTT sent to the WebSocket port', bytes: () => connectBytes('raw-on-ws'), reason: 'ws_not_http', status: 400 },
  { name: 'an unmasked client frame', bytes: () => upgraded(clientFrame(BINARY, connectBytes('unmasked'), { masked: false })), reason: 'ws_unmasked_frame', status: 101, close: 1002 },
  { name: 'a text frame', bytes: () => upgraded(clientFrame(TEXT, Buffer.from('hello'))), reason: 'ws_text_frame', status: 101, close: 1003 },
  {
    name: 'a first MQTT packet that is not a CONNECT',
    bytes: () => upgraded(clientFrame(BINARY, packetBytes({ cmd: 'publish', topic: 'a', payload: Buffer.from('x'), qos: 0, dup: false, retain: false }))),
    reason: 'sniff_invalid',
    status: 101,
    close: 1002,
  },
  { name: 'a first message larger than sniff.maxBytes', bytes: () => upgraded(clientFrame(BINARY, Buffer.alloc(MAX_BYTES * 4, 0x10)).subarray(0, 20)), reason: 'sniff_too_large', status: 101, close: 1009 },
];

/** A good mqtt.js client over ws that publishes and gets its message back. */
async function goodWsSession(clientId: string): Promise<void> {
  const client = cleanup.add(await mqtt.connectAsync(balancer.wsUrl, { clientId, reconnectPeriod: 0, connectTimeout: 10_000 }), (c) => c.endAsync(true));
  await client.subscribeAsync(`good/${clientId}`, { qos: 1 });
  const got = new Promise<void>((resolve) => client.on('message', () => resolve()));
  await client.publishAsync(`good/${clientId}`, 'hi', { qos: 1 });
  await got;
  await client.endAsync();
}

describe('bad WebSocket openings close only their own connection', () => {
  it.each(cases)('$name -> $status $reason', async ({ bytes, reason, status, close }) => {
    await waitFor(() => balancer.server.stats.get('connections_active') === 0, { what: 'no client spliced' });
    const stats = balancer.server.stats.snapshot();
    const backendConnections = recorder.connections.length;
    const rejected = logLines(balancer.logs, { msg: 'connection rejected', reason }).length;

    const bad = cleanup.add(await RawClient.connect(balancer.wsPort, { parse: false }), (c) => c.destroy());
    await bad.write(bytes());
    const how = await bad.waitClosed('the bad connection to close');
    expect(how.error).toBeUndefined(); // a FIN after the answer, not a reset
    const reply = parseReply(bad.received());
    expect(reply.status).toBe(status);
    if (close !== undefined) {
      expect(reply.frames.map((f) => f.opcode)).toEqual([0x8]);
      expect(closeCode(reply.frames[0]!.payload)).toBe(close);
    }

    const line = await waitForLog(balancer.logs, { msg: 'connection rejected', reason }, rejected + 1);
    expect(line.level).toBe(40);
    expect(line.listener).toBe('ws');
    expect(counterChanges(stats, balancer.server.stats.snapshot())).toEqual({ connections_accepted: 1, connections_rejected: 1, [`rejected_${reason}`]: 1 });
    expect(recorder.connections.length).toBe(backendConnections);
    await goodWsSession(`good-after-${reason}-${status}`);
  });

  it('a CONNECT cut into fragments across frames and TCP segments, after a ping, is accepted and answered in a binary frame', async () => {
    const connect = connectBytes('fragmented', 4);
    const frames = Buffer.concat([
      clientFrame(PING, Buffer.from('p')),
      clientFrame(BINARY, connect.subarray(0, 5), { fin: false }),
      clientFrame(0x0, connect.subarray(5, 9), { fin: false }),
      clientFrame(0x0, connect.subarray(9)),
    ]);
    const client = cleanup.add(await RawClient.connect(balancer.wsPort, { parse: false }), (c) => c.destroy());
    const all = upgraded(frames);
    // One byte per write through the head and the first frames, then the rest.
    await client.writeSplit(all, Array.from({ length: 60 }, (_, i) => i + 1).concat([all.length - 7]));
    const reply = await waitFor(() => {
      const r = parseReply(client.received());
      return r.frames.some((f) => f.opcode === BINARY) ? r : undefined;
    }, { what: 'a binary frame from the broker' });
    expect(reply.status).toBe(101);
    expect(reply.head).toMatch(/Sec-WebSocket-Protocol: mqtt/);
    const packet = mqttPacket.parser();
    const packets: mqttPacket.Packet[] = [];
    packet.on('packet', (p: mqttPacket.Packet) => packets.push(p));
    packet.parse(reply.frames.find((f) => f.opcode === BINARY)!.payload);
    expect(packets[0]).toMatchObject({ cmd: 'connack', returnCode: 0 });
    // What the broker got is the CONNECT, unwrapped from the frames, byte for byte.
    await waitFor(() => recorder.connections.at(-1)?.bytes().length, { what: 'bytes at the backend' });
    expect(recorder.connections.at(-1)!.bytes().subarray(0, connect.length).equals(connect)).toBe(true);
  });

  it('the old mqttv3.1 subprotocol is accepted', async () => {
    const client = cleanup.add(await RawClient.connect(balancer.wsPort, { parse: false }), (c) => c.destroy());
    await client.write(Buffer.concat([upgradeRequest({ protocol: 'mqttv3.1' }), clientFrame(BINARY, connectBytes('old-client', 3))]));
    const reply = await waitFor(() => {
      const r = parseReply(client.received());
      return r.frames.length > 0 ? r : undefined;
    }, { what: 'an answer' });
    expect(reply.head).toMatch(/Sec-WebSocket-Protocol: mqttv3\.1/);
    expect(reply.frames[0]!.opcode).toBe(BINARY);
  });
});

describe('a WebSocket client that upgrades and then stays silent', () => {
  let quick: WsBalancer;
  beforeAll(async () => {
    quick = await startWsBalancer({ backends: [recorder.spec], 'sniff.timeout': '300ms', 'sniff.maxBytes': MAX_BYTES });
  });
  afterAll(() => quick?.close());

  it.each([
    { name: 'silent after the upgrade', bytes: () => upgradeRequest({ protocol: 'mqtt' }), status: 101 },
    { name: 'silent in the middle of its request head', bytes: () => upgradeRequest({ protocol: 'mqtt' }).subarray(0, 30), status: 408 },
  ])('$name: closed with sniff_timeout ($status)', async ({ bytes, status }) => {
    const stats = quick.server.stats.snapshot();
    const backendConnections = recorder.connections.length;
    const stalled = cleanup.add(await RawClient.connect(quick.wsPort, { parse: false }), (c) => c.destroy());
    await stalled.write(bytes());
    await stalled.waitClosed('the silent connection to close');
    const reply = parseReply(stalled.received());
    expect(reply.status).toBe(status);
    if (status === 101) expect(reply.frames.map((f) => [f.opcode, closeCode(f.payload)])).toEqual([[0x8, 1002]]);
    const line = await waitForLog(quick.logs, { msg: 'connection rejected', reason: 'sniff_timeout' });
    expect(String(line.err)).toMatch(/WebSocket|CONNECT/);
    expect(counterChanges(stats, quick.server.stats.snapshot())).toMatchObject({ connections_accepted: 1, connections_rejected: 1, rejected_sniff_timeout: 1 });
    expect(recorder.connections.length).toBe(backendConnections);
  });
});
