import mqttPacket, { type IConnectPacket } from 'mqtt-packet';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { inspectConnect } from '../../src/sniff/connect-sniffer.ts';

const connect = (fields: Partial<IConnectPacket>, protocolVersion: 3 | 4 | 5 = 4): Buffer =>
  mqttPacket.generate({ cmd: 'connect', clientId: 'c1', protocolVersion, protocolId: protocolVersion === 3 ? 'MQIsdp' : 'MQTT', ...fields } as IConnectPacket, { protocolVersion });

const FIXTURES: [string, Buffer, Partial<IConnectPacket>][] = [
  ['MQTT 3.1 (MQIsdp)', connect({ clientId: 'old-client' }, 3), { protocolId: 'MQIsdp', protocolVersion: 3, clientId: 'old-client' }],
  ['MQTT 3.1.1 persistent', connect({ clientId: 'sub1', clean: false, keepalive: 60 }), { protocolVersion: 4, clientId: 'sub1', clean: false, keepalive: 60 }],
  ['MQTT 3.1.1 with will, username and password', connect({ clientId: 'w', username: 'alice', password: Buffer.from('secret'), will: { topic: 'dead', payload: Buffer.from('bye'), qos: 1, retain: false } }), { clientId: 'w', username: 'alice' }],
  ['MQTT 5 with properties', connect({ clientId: 'v5', properties: { sessionExpiryInterval: 3600, receiveMaximum: 10, userProperties: { a: 'b' } } }, 5), { protocolVersion: 5, clientId: 'v5' }],
  ['MQTT 5 with will properties', connect({ clientId: 'v5w', will: { topic: 'x', payload: Buffer.from('p'), qos: 0, retain: false, properties: { willDelayInterval: 5 } } }, 5), { clientId: 'v5w' }],
  ['empty client id', connect({ clientId: '' }), { clientId: '' }],
];

describe('inspectConnect', () => {
  it.each(FIXTURES)('parses %s whole, byte by byte, and at every split', (_name, bytes, expected) => {
    const whole = inspectConnect(bytes, 65536);
    expect(whole.kind).toBe('done');
    if (whole.kind === 'done') {
      expect(whole.packet).toMatchObject(expected);
      expect(whole.length).toBe(bytes.length);
    }
    for (let cut = 0; cut < bytes.length; cut++) {
      expect(inspectConnect(bytes.subarray(0, cut), 65536).kind).toBe('need-more');
    }
  });

  it('reports the CONNECT length when other packets follow in the same buffer', () => {
    const first = connect({ clientId: 'coalesced' });
    const subscribe = mqttPacket.generate({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 't/#', qos: 1 }] });
    const result = inspectConnect(Buffer.concat([first, subscribe]), 65536);
    expect(result).toMatchObject({ kind: 'done', length: first.length });
  });

  it.each([
    ['HTTP', Buffer.from('GET / HTTP/1.1\r\n'), /HTTP/],
    ['TLS', Buffer.from([0x16, 0x03, 0x01, 0x00, 0x10]), /TLS/],
    ['a PUBLISH first', mqttPacket.generate({ cmd: 'publish', topic: 't', payload: 'x', qos: 0, retain: false, dup: false }), /PUBLISH/],
    ['reserved CONNECT flags', Buffer.from([0x11, 0x00]), /reserved flag/],
    ['a five-byte remaining length', Buffer.from([0x10, 0xff, 0xff, 0xff, 0xff, 0x01]), /longer than 4 bytes/],
    ['a bad protocol name', Buffer.from([0x10, 0x08, 0x00, 0x04, 0x4d, 0x51, 0x54, 0x58, 0x04, 0x02]), /protocolId|Invalid/],
  ])('rejects %s with a reason', (_name, bytes, reason) => {
    const result = inspectConnect(bytes, 65536);
    expect(result.kind).toBe('reject');
    if (result.kind === 'reject') expect(result.error.message).toMatch(reason);
  });

  it('rejects an oversized CONNECT from its header, before the body arrives', () => {
    const big = connect({ clientId: 'x'.repeat(2000) });
    const result = inspectConnect(big.subarray(0, 4), 1000);
    expect(result.kind).toBe('reject');
    if (result.kind === 'reject') expect(result.error.code).toBe('TETHER_ERR_SNIFF_TOO_LARGE');
  });

  it('never throws and is monotone: once it answers, more bytes do not change the answer', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), fc.uint8Array({ maxLength: 16 }), (head, tail) => {
        const a = inspectConnect(Buffer.from(head), 4096);
        const b = inspectConnect(Buffer.concat([Buffer.from(head), Buffer.from(tail)]), 4096);
        if (a.kind !== 'need-more') expect(b.kind).toBe(a.kind);
      }),
      { numRuns: 2000 },
    );
  });
});
