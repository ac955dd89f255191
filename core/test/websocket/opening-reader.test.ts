import { randomBytes } from 'node:crypto';
import mqttPacket, { type IConnectPacket } from 'mqtt-packet';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { OpeningReader, type OpeningResult } from '../../src/websocket/opening-reader.ts';
import { acceptFor, WEBSOCKET_DEFAULTS } from '../../src/websocket/websocket-handshake.ts';
import { WebSocketRejectError } from '../../src/errors.ts';

const CONNECT = mqttPacket.generate({ cmd: 'connect', clientId: 'reader-1', protocolVersion: 4, protocolId: 'MQTT', clean: false } as IConnectPacket);
const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';

function request(extra = ''): Buffer {
  return Buffer.from(`GET /mqtt HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n${extra}\r\n`, 'latin1');
}

function frame(opcode: number, payload: Buffer, fin = true): Buffer {
  const mask = randomBytes(4);
  const body = Buffer.from(payload);
  for (let i = 0; i < body.length; i++) body[i]! ^= mask[i & 3]!;
  const header = payload.length < 126 ? Buffer.from([(fin ? 0x80 : 0) | opcode, 0x80 | payload.length]) : Buffer.from([(fin ? 0x80 : 0) | opcode, 0x80 | 126, payload.length >> 8, payload.length & 0xff]);
  return Buffer.concat([header, mask, body]);
}

/** Feeds `bytes` cut at `cuts` the way the socket sniff does: inspect the growing view after each piece. */
function feed(bytes: Buffer, cuts: readonly number[]): { result: OpeningResult; upgrades: number } {
  const reader = new OpeningReader(WEBSOCKET_DEFAULTS, 65536);
  let upgrades = 0;
  let result: OpeningResult = { kind: 'need-more' };
  for (const to of [...cuts, bytes.length]) {
    result = reader.inspect(bytes.subarray(0, to));
    if (result.kind === 'upgrade') {
      upgrades++;
      result = reader.inspect(bytes.subarray(0, to));
    }
    if (result.kind !== 'need-more') return { result, upgrades };
  }
  return { result, upgrades };
}

describe('OpeningReader', () => {
  const frames = Buffer.concat([frame(0x9, Buffer.from('ping')), frame(0x2, CONNECT.subarray(0, 7), false), frame(0x0, CONNECT.subarray(7, 12), false), frame(0x0, Buffer.concat([CONNECT.subarray(12), Buffer.from([0xc0, 0x00])]))]);
  const opening = Buffer.concat([request(), frames]);

  it('reads the request, answers with the RFC 6455 accept key, and finds the CONNECT across fragments after a ping', () => {
    const { result, upgrades } = feed(opening, []);
    expect(upgrades).toBe(1);
    expect(result.kind).toBe('done');
    if (result.kind !== 'done') return;
    expect(acceptFor(KEY)).toBe('s3pPLMBiTxaQ9kYGzzhZRbK+xOo='); // RFC 6455 1.3's example
    expect(result.opening.upgrade.response.toString()).toContain('Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
    expect(result.opening.packet.clientId).toBe('reader-1');
    // The MQTT bytes: the CONNECT and the PINGREQ after it in the same message.
    expect(result.opening.mqtt.equals(Buffer.concat([CONNECT, Buffer.from([0xc0, 0x00])]))).toBe(true);
    expect(result.opening.request.equals(request())).toBe(true);
    expect(result.opening.frames.equals(frames)).toBe(true);
    expect(result.opening.rest.length).toBe(0);
  });

  it('gives the same answer however the bytes are cut', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 1, max: opening.length - 1 }), { maxLength: 12 }), (cuts) => {
        const { result, upgrades } = feed(opening, [...cuts].sort((a, b) => a - b));
        expect(upgrades).toBe(1);
        expect(result.kind === 'done' && result.opening.mqtt.subarray(0, CONNECT.length).equals(CONNECT)).toBe(true);
      }),
      { numRuns: 200 },
    );
  });

  it('keeps a next frame that is not complete yet as the rest, unread', () => {
    const next = frame(0x2, Buffer.from([0xc0, 0x00]));
    const { result } = feed(Buffer.concat([request(), frame(0x2, CONNECT), next.subarray(0, 3)]), []);
    expect(result.kind === 'done' && result.opening.rest.equals(next.subarray(0, 3))).toBe(true);
  });

  it.each([
    ['an unmasked frame', Buffer.concat([request(), Buffer.from([0x82, CONNECT.length]), CONNECT]), 'ws_unmasked_frame'],
    ['a text frame', Buffer.concat([request(), frame(0x1, Buffer.from('{}'))]), 'ws_text_frame'],
    ['a continuation without a message', Buffer.concat([request(), frame(0x0, CONNECT)]), 'ws_protocol_error'],
    ['a PUBLISH first', Buffer.concat([request(), frame(0x2, Buffer.from([0x30, 0x03, 0x00, 0x01, 0x61]))]), 'sniff_invalid'],
    ['a frame declaring more than maxBytes', Buffer.concat([request(), Buffer.from([0x82, 0xff, 0, 0, 0, 0, 0, 2, 0, 0])]), 'sniff_too_large'],
    ['a request without Upgrade', Buffer.from('GET /mqtt HTTP/1.1\r\nHost: x\r\n\r\n'), 'ws_not_upgrade'],
    ['a bad key', request().toString().replace(KEY, 'short'), 'ws_bad_request'],
    ['version 8', request().toString().replace('Version: 13', 'Version: 8'), 'ws_bad_version'],
  ])('refuses %s, with its reason and a reply', (_name, bytes, reason) => {
    const { result } = feed(Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes, 'latin1'), []);
    expect(result.kind).toBe('reject');
    if (result.kind !== 'reject') return;
    expect(result.error.reason).toBe(reason);
    expect(result.error).toBeInstanceOf(WebSocketRejectError);
    expect((result.error as WebSocketRejectError).reply?.length).toBeGreaterThan(0);
  });

  it('refuses a head longer than maxHeaderBytes before its end arrives', () => {
    const reader = new OpeningReader({ ...WEBSOCKET_DEFAULTS, maxHeaderBytes: 1024 }, 65536);
    const result = reader.inspect(Buffer.from(`GET /mqtt HTTP/1.1\r\nCookie: ${'x'.repeat(2000)}`));
    expect(result.kind === 'reject' && result.error.reason).toBe('ws_headers_too_large');
  });
});
