import fc from 'fast-check';
import mqttPacket, { type IConnectPacket } from 'mqtt-packet';
import { describe, expect, it } from 'vitest';
import { ConnectMalformedError } from '../../src/errors.ts';
import { inspectConnect } from '../../src/sniff/connect-sniffer.ts';

// CONNECTs built byte by byte, so each can break exactly one rule of the specification that
// mqtt-packet (and HAProxy) let through.
const u16 = (n: number): Buffer => Buffer.from([n >> 8, n & 0xff]);
const bin = (b: Buffer): Buffer => Buffer.concat([u16(b.length), b]);
const str = (s: string | Buffer): Buffer => bin(typeof s === 'string' ? Buffer.from(s, 'utf8') : s);
const varint = (n: number): Buffer => {
  const out: number[] = [];
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    out.push(byte);
  } while (n > 0);
  return Buffer.from(out);
};
/** The same number in `width` bytes: a longer form than the shortest. */
const longVarint = (n: number, width: number): Buffer => {
  const out: number[] = [];
  for (let i = 0; i < width; i++) {
    out.push((n % 128) | (i < width - 1 ? 0x80 : 0));
    n = Math.floor(n / 128);
  }
  return Buffer.from(out);
};

interface Parts {
  level?: 4 | 5;
  flags?: number;
  props?: Buffer;
  clientId?: string | Buffer;
  will?: { props?: Buffer; topic: string | Buffer; payload: Buffer };
  username?: string | Buffer;
  password?: Buffer;
  trailing?: Buffer;
  lengthWidth?: number;
}

function build(p: Parts): Buffer {
  const level = p.level ?? 4;
  let flags = p.flags ?? 0x02;
  if (p.will) flags |= 0x04;
  if (p.username !== undefined) flags |= 0x80;
  if (p.password !== undefined) flags |= 0x40;
  const body = Buffer.concat([
    str('MQTT'),
    Buffer.from([level, flags, 0, 60]),
    level === 5 ? Buffer.concat([varint((p.props ?? Buffer.alloc(0)).length), p.props ?? Buffer.alloc(0)]) : Buffer.alloc(0),
    str(p.clientId ?? 'c1'),
    p.will ? Buffer.concat([level === 5 ? Buffer.concat([varint((p.will.props ?? Buffer.alloc(0)).length), p.will.props ?? Buffer.alloc(0)]) : Buffer.alloc(0), str(p.will.topic), bin(p.will.payload)]) : Buffer.alloc(0),
    p.username !== undefined ? str(p.username) : Buffer.alloc(0),
    p.password !== undefined ? bin(p.password) : Buffer.alloc(0),
    p.trailing ?? Buffer.alloc(0),
  ]);
  const length = p.lengthWidth ? longVarint(body.length, p.lengthWidth) : varint(body.length);
  return Buffer.concat([Buffer.from([0x10]), length, body]);
}

const prop = (id: number, value: Buffer): Buffer => Buffer.concat([Buffer.from([id]), value]);
const sessionExpiry = (s: number): Buffer => prop(0x11, Buffer.from([0, 0, s >> 8, s & 0xff]));
const userProperty = (k: string, v: string): Buffer => prop(0x26, Buffer.concat([str(k), str(v)]));

function verdict(bytes: Buffer, strict = true) {
  const result = inspectConnect(bytes, 65536, strict);
  if (result.kind !== 'reject') return result.kind;
  return result.error instanceof ConnectMalformedError ? result.error.reason : `invalid: ${result.error.message}`;
}

describe('the strict CONNECT check', () => {
  it.each<[string, Parts]>([
    ['MQTT 3.1.1 with every field', { clientId: 'dev-1', will: { topic: 'status/dev-1', payload: Buffer.from('gone') }, username: 'alice', password: Buffer.from([0, 1, 2]) }],
    ['MQTT 5 with repeated user properties and a will', { level: 5, props: Buffer.concat([sessionExpiry(60), userProperty('a', '1'), userProperty('a', '2')]), will: { props: prop(0x18, Buffer.from([0, 0, 0, 5])), topic: 'w', payload: Buffer.alloc(0) } }],
    ['non-ASCII UTF-8 (é, 漢, an emoji)', { clientId: 'é漢😀', username: 'ünïcode' }],
    ['a password that is not UTF-8 (it is binary data)', { username: 'u', password: Buffer.from([0xff, 0x00, 0xc3]) }],
    ['a 127-byte client id (one-byte length) and a 200-byte one (two bytes)', { clientId: 'x'.repeat(200) }],
  ])('accepts %s', (_name, parts) => {
    expect(verdict(build(parts))).toBe('done');
  });

  it.each<[string, Parts, string]>([
    ['a client id that is not UTF-8', { clientId: Buffer.from([0x63, 0xc3, 0x28]) }, 'connect_utf8'],
    ['a client id holding U+0000', { clientId: Buffer.from('a\0b') }, 'connect_utf8'],
    ['an overlong encoding of U+0000 (C0 80)', { clientId: Buffer.from([0x61, 0xc0, 0x80]) }, 'connect_utf8'],
    ['an encoded surrogate (ED A0 80)', { clientId: Buffer.from([0xed, 0xa0, 0x80]) }, 'connect_utf8'],
    ['a user name that is not UTF-8', { username: Buffer.from([0xff]) }, 'connect_utf8'],
    ['a Will topic holding U+0000', { will: { topic: Buffer.from('a\0'), payload: Buffer.alloc(0) } }, 'connect_utf8'],
    ['an MQTT 5 user property value that is not UTF-8', { level: 5, props: prop(0x26, Buffer.concat([str('k'), str(Buffer.from([0xfe]))])) }, 'connect_utf8'],
    ['bytes after the last field', { trailing: Buffer.from('extra') }, 'connect_trailing_bytes'],
    ['a password announced by no flag', { flags: 0x02, trailing: bin(Buffer.from('pw')) }, 'connect_trailing_bytes'],
    ['a remaining length in two bytes where one would do', { lengthWidth: 2 }, 'connect_not_shortest'],
    ['a remaining length in four bytes', { lengthWidth: 4 }, 'connect_not_shortest'],
    ['a property identifier not allowed in a CONNECT (Topic Alias, 0x23)', { level: 5, props: prop(0x23, u16(1)) }, 'connect_property'],
    ['Session Expiry Interval twice', { level: 5, props: Buffer.concat([sessionExpiry(60), sessionExpiry(0)]) }, 'connect_property'],
    ['a Will property in the CONNECT properties (Will Delay, 0x18)', { level: 5, props: prop(0x18, Buffer.from([0, 0, 0, 1])) }, 'connect_property'],
    ['a CONNECT property among the Will properties (Session Expiry)', { level: 5, will: { props: sessionExpiry(1), topic: 't', payload: Buffer.alloc(0) } }, 'connect_property'],
    ['Content Type twice in the Will properties', { level: 5, will: { props: Buffer.concat([prop(0x03, str('a')), prop(0x03, str('b'))]), topic: 't', payload: Buffer.alloc(0) } }, 'connect_property'],
  ])('refuses %s', (_name, parts, reason) => {
    const bytes = build(parts);
    expect(verdict(bytes)).toBe(reason);
    // mqtt-packet alone lets it through: this is what strict adds.
    expect(verdict(bytes, false)).toBe('done');
  });

  it('refuses an unknown property identifier (mqtt-packet does too)', () => {
    expect(verdict(build({ level: 5, props: prop(0x7f, Buffer.from([0])) }))).toMatch(/^invalid: /);
  });

  it('refuses a property length not in its shortest form', () => {
    const props = sessionExpiry(5);
    const body = Buffer.concat([str('MQTT'), Buffer.from([5, 2, 0, 60]), longVarint(props.length, 2), props, str('c1')]);
    const bytes = Buffer.concat([Buffer.from([0x10]), varint(body.length), body]);
    expect(verdict(bytes)).toBe('connect_not_shortest');
  });

  it('names the field and the rule in the error an operator reads', () => {
    const result = inspectConnect(build({ username: Buffer.from([0x61, 0xff]) }), 65536);
    expect(result.kind === 'reject' && result.error.message).toBe('malformed CONNECT: user name is not well-formed UTF-8');
    const extra = inspectConnect(build({ trailing: Buffer.from([1, 2, 3]) }), 65536);
    expect(extra.kind === 'reject' && extra.error.message).toBe('malformed CONNECT: 3 bytes after the last field');
  });
});

// Differential: what mqtt-packet generates from well-formed fields passes the strict check with
// the same fields; and on mutated bytes the strict check never throws and never accepts what
// mqtt-packet refuses.
const utf8Text = fc.string({ unit: 'grapheme', maxLength: 40 }).filter((s) => !s.includes('\0'));
const props5 = fc.record(
  {
    sessionExpiryInterval: fc.integer({ min: 0, max: 0xffffffff }),
    receiveMaximum: fc.integer({ min: 1, max: 0xffff }),
    maximumPacketSize: fc.integer({ min: 1, max: 0xffffffff }),
    topicAliasMaximum: fc.integer({ min: 0, max: 0xffff }),
    requestResponseInformation: fc.boolean(),
    requestProblemInformation: fc.boolean(),
    userProperties: fc.dictionary(fc.string({ minLength: 1, maxLength: 8 }).filter((s) => !s.includes('\0')), utf8Text, { minKeys: 1, maxKeys: 3 }), // mqtt-packet miswrites an empty one
    authenticationMethod: utf8Text,
  },
  { requiredKeys: [] },
);
const packets = fc.record({
  protocolVersion: fc.constantFrom(3 as const, 4 as const, 5 as const),
  clientId: utf8Text,
  clean: fc.boolean(),
  keepalive: fc.integer({ min: 0, max: 0xffff }),
  username: fc.option(utf8Text, { nil: undefined }),
  password: fc.option(fc.uint8Array({ maxLength: 20 }).map((a) => Buffer.from(a)), { nil: undefined }),
  will: fc.option(fc.record({ topic: utf8Text.filter((s) => s.length > 0), payload: fc.uint8Array({ maxLength: 20 }).map((a) => Buffer.from(a)), qos: fc.constantFrom(0 as const, 1 as const, 2 as const), retain: fc.boolean() }), { nil: undefined }),
  properties: props5,
});

function generate(p: Record<string, unknown>): Buffer | undefined {
  const fields = p as unknown as IConnectPacket & { protocolVersion: 3 | 4 | 5 };
  const packet = {
    ...fields,
    cmd: 'connect',
    protocolId: fields.protocolVersion === 3 ? 'MQIsdp' : 'MQTT',
    // A password without a user name is MQTT 5 only.
    password: fields.username === undefined && fields.protocolVersion !== 5 ? undefined : fields.password,
    properties: fields.protocolVersion === 5 ? fields.properties : undefined,
  } as IConnectPacket;
  try {
    return mqttPacket.generate(packet, { protocolVersion: fields.protocolVersion });
  } catch {
    return undefined; // a combination mqtt-packet will not write
  }
}

describe('the strict check against mqtt-packet (generated and mutated packets)', () => {
  it('accepts every CONNECT mqtt-packet writes from well-formed fields, with the same fields', () => {
    fc.assert(
      fc.property(packets, (p) => {
        const bytes = generate(p);
        if (!bytes) return;
        const strict = inspectConnect(bytes, 1 << 20, true);
        const lenient = inspectConnect(bytes, 1 << 20, false);
        expect(lenient.kind).toBe('done');
        expect(strict.kind).toBe('done');
        if (strict.kind === 'done' && lenient.kind === 'done') expect(strict.packet).toEqual(lenient.packet);
      }),
      { numRuns: 500 },
    );
  });

  it('never throws on mutated packets, and never accepts what mqtt-packet refuses', () => {
    const mutation = fc.tuple(packets, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }), fc.nat({ max: 8 }));
    fc.assert(
      fc.property(mutation, ([p, flips, cut]) => {
        const bytes = generate(p);
        if (!bytes) return;
        const mutated = Buffer.from(bytes);
        for (const [at, value] of flips) mutated[at % mutated.length] = value;
        const input = mutated.subarray(0, Math.max(1, mutated.length - cut));
        const strict = inspectConnect(input, 1 << 20, true);
        const lenient = inspectConnect(input, 1 << 20, false);
        if (strict.kind === 'done') expect(lenient.kind).toBe('done');
        if (lenient.kind === 'need-more') expect(strict.kind).not.toBe('done');
      }),
      { numRuns: 3000 },
    );
  });
});
