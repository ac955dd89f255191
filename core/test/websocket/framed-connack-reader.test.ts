import mqttPacket from 'mqtt-packet';
import { describe, expect, it } from 'vitest';
import { FramedConnackReader } from '../../src/websocket/framed-connack-reader.ts';

/** A frame as a broker sends it: FIN, the opcode, an unmasked payload (extended lengths as needed). */
function frame(opcode: number, payload: Buffer, options: { fin?: boolean; masked?: boolean } = {}): Buffer {
  const first = (options.fin === false ? 0 : 0x80) | opcode;
  const mask = options.masked ? 0x80 : 0;
  const length = payload.length < 126 ? Buffer.from([mask | payload.length]) : payload.length < 65536 ? Buffer.from([mask | 126, payload.length >> 8, payload.length & 0xff]) : Buffer.concat([Buffer.from([mask | 127, 0, 0, 0, 0]), Buffer.from([payload.length >>> 24, (payload.length >> 16) & 0xff, (payload.length >> 8) & 0xff, payload.length & 0xff])]);
  return Buffer.concat([Buffer.from([first]), length, options.masked ? Buffer.alloc(4) : Buffer.alloc(0), payload]);
}

const connack311 = mqttPacket.generate({ cmd: 'connack', returnCode: 0, sessionPresent: true });
const connack5 = mqttPacket.generate({ cmd: 'connack', reasonCode: 0, sessionPresent: true, properties: { topicAliasMaximum: 10, serverKeepAlive: 30 } }, { protocolVersion: 5 });

/** Feeds `bytes` cut at every position (two chunks), and byte by byte; all readings must agree. */
function readings(bytes: Buffer, version: 3 | 4 | 5 = 4) {
  const results = [];
  for (let cut = 0; cut <= bytes.length; cut++) {
    const r = new FramedConnackReader(version);
    r.push(bytes.subarray(0, cut));
    r.push(bytes.subarray(cut));
    results.push({ verdict: r.verdict, code: r.code, sessionPresent: r.sessionPresent });
  }
  const one = new FramedConnackReader(version);
  for (const b of bytes) one.push(Buffer.from([b]));
  results.push({ verdict: one.verdict, code: one.code, sessionPresent: one.sessionPresent });
  return new Set(results.map((r) => JSON.stringify(r)));
}

describe('FramedConnackReader (the CONNACK inside a broker\'s WebSocket frames)', () => {
  it.each([
    ['in one binary frame', frame(2, connack311)],
    ['after a ping', Buffer.concat([frame(9, Buffer.from('hi')), frame(2, connack311)])],
    ['split over a fragment and its continuation', Buffer.concat([frame(2, connack311.subarray(0, 1), { fin: false }), frame(0, connack311.subarray(1))])],
    ['in a frame with a 16-bit length, followed by a PUBLISH', frame(2, Buffer.concat([connack311, mqttPacket.generate({ cmd: 'publish', topic: 't', payload: Buffer.alloc(300), qos: 0, dup: false, retain: false })]))],
    ['in a frame with a 64-bit length', frame(2, Buffer.concat([connack311, Buffer.alloc(70_000)]))],
  ])('reads it %s, however the bytes are cut', (_name, bytes) => {
    expect(readings(bytes)).toEqual(new Set([JSON.stringify({ verdict: 'connack', code: 0, sessionPresent: true })]));
  });

  it('reads an MQTT 5 CONNACK with properties', () => {
    expect(readings(frame(2, connack5), 5)).toEqual(new Set([JSON.stringify({ verdict: 'connack', code: 0, sessionPresent: true })]));
  });

  it.each([
    ['a text frame', frame(1, connack311), /text/],
    ['a masked frame (servers never mask)', frame(2, connack311, { masked: true }), /masked/],
    ['a Close before the CONNACK', frame(8, Buffer.from([0x03, 0xe8])), /closed the WebSocket before its CONNACK/],
    ['a frame with reserved bits', Buffer.concat([Buffer.from([0xc2]), frame(2, connack311).subarray(1)]), /reserved bits/],
    ['a first packet that is not a CONNACK', frame(2, mqttPacket.generate({ cmd: 'pingresp' })), /expected CONNACK/],
  ])('says the first answer is not a CONNACK for %s', (_name, bytes, why) => {
    const r = new FramedConnackReader(4);
    expect(r.push(bytes)).toBe('invalid');
    expect(r.error).toMatch(why);
  });

  it('keeps its verdict and never changes the bytes it is shown', () => {
    const bytes = Buffer.concat([frame(2, connack311), frame(2, Buffer.from([0xff, 0xff]))]);
    const copy = Buffer.from(bytes);
    const r = new FramedConnackReader(4);
    expect(r.push(bytes)).toBe('connack');
    expect(r.push(frame(1, Buffer.from('late text')))).toBe('connack');
    expect(bytes.equals(copy)).toBe(true);
  });
});
