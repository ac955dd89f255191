import fc from 'fast-check';
import mqttPacket, { type IConnackPacket, type Packet } from 'mqtt-packet';
import { describe, expect, it } from 'vitest';
import { ConnackReader, type ConnackVerdict } from '../../src/mqtt/connack-reader.ts';
import { connackReason } from '../../src/mqtt/connack-codes.ts';

type Version = 3 | 4 | 5;

/** Feeds `bytes` to a new reader in the given chunk lengths (the rest as one last chunk). */
function read(bytes: Uint8Array, version: Version, cuts: readonly number[] = []): ConnackReader {
  const reader = new ConnackReader(version);
  let at = 0;
  for (const cut of [...cuts, bytes.length]) {
    const end = Math.min(bytes.length, at + cut);
    reader.push(bytes.subarray(at, end));
    at = end;
  }
  if (at < bytes.length) reader.push(bytes.subarray(at));
  return reader;
}

const connack = (version: Version, sessionPresent: boolean, code: number, properties?: Record<string, unknown>): Buffer =>
  version === 5
    ? mqttPacket.generate({ cmd: 'connack', sessionPresent, reasonCode: code, ...(properties ? { properties } : {}) }, { protocolVersion: 5 })
    : mqttPacket.generate({ cmd: 'connack', sessionPresent, returnCode: code });

describe('ConnackReader', () => {
  it('reads the return code and session-present flag of a 3.1.1 CONNACK', () => {
    const r = read(Buffer.from([0x20, 0x02, 0x01, 0x00]), 4);
    expect(r.verdict).toBe('connack');
    expect({ code: r.code, sessionPresent: r.sessionPresent }).toEqual({ code: 0, sessionPresent: true });
    expect(read(Buffer.from([0x20, 0x02, 0x00, 0x05]), 4)).toMatchObject({ code: 5, sessionPresent: false });
  });

  it('reads an MQTT 5 CONNACK from its first four bytes, before its properties have arrived', () => {
    const bytes = connack(5, false, 0x86, { reasonString: 'wrong password', serverKeepAlive: 30 });
    const r = new ConnackReader(5);
    expect(r.push(bytes.subarray(0, 4))).toBe('connack');
    expect(r.code).toBe(0x86);
    expect(connackReason(r.code, 5)).toBe('bad_user_name_or_password');
  });

  it('reads a CONNACK split at every possible place, one byte at a time included', () => {
    const bytes = connack(4, true, 0);
    for (let cut = 1; cut < bytes.length; cut++) expect(read(bytes, 4, [cut]), `cut at ${cut}`).toMatchObject({ verdict: 'connack', code: 0, sessionPresent: true });
    expect(read(bytes, 4, [1, 1, 1, 1])).toMatchObject({ verdict: 'connack', code: 0, sessionPresent: true });
  });

  it('says need-more until the code has arrived, and nothing changes after the verdict', () => {
    const r = new ConnackReader(4);
    expect(r.push(Buffer.alloc(0))).toBe('need-more');
    expect(r.push(Buffer.from([0x20]))).toBe('need-more');
    expect(r.push(Buffer.from([0x02, 0x00]))).toBe('need-more');
    expect(r.push(Buffer.from([0x04, 0x30, 0x00]))).toBe('connack');
    expect(r.push(Buffer.from([0xff, 0xff]))).toBe('connack');
    expect(r.code).toBe(4);
  });

  it('skips the AUTH packets of an MQTT 5 enhanced authentication that come before the CONNACK', () => {
    const auth = mqttPacket.generate({ cmd: 'auth', reasonCode: 0x18, properties: { authenticationMethod: 'SCRAM-SHA-1', authenticationData: Buffer.alloc(300, 7) } }, { protocolVersion: 5 });
    const bytes = Buffer.concat([auth, auth, connack(5, true, 0)]);
    for (const cut of [1, 2, 3, 7, auth.length, auth.length + 1, bytes.length - 1]) {
      expect(read(bytes, 5, [cut, 5]), `cut at ${cut}`).toMatchObject({ verdict: 'connack', code: 0, sessionPresent: true });
    }
  });

  it('calls invalid, with the reason, a first packet that is not a CONNACK', () => {
    const cases: [number[], Version, RegExp][] = [
      [[0x30, 0x05, 0x00, 0x01, 0x74, 0x68, 0x69], 4, /first packet is PUBLISH \(header 0x30\), expected CONNACK/],
      [[0x21, 0x02, 0x00, 0x00], 4, /reserved flag bits/],
      [[0x20, 0x02, 0x02, 0x00], 4, /flags 0x02 have reserved bits/],
      [[0x20, 0x01, 0x00], 4, /remaining length 1/],
      [[0x20, 0x80, 0x80, 0x80, 0x80], 5, /longer than 4 bytes/],
      // AUTH exists only in MQTT 5.
      [[0xf0, 0x00, 0x20, 0x02, 0x00, 0x00], 4, /first packet is AUTH/],
      [[0x48, 0x54, 0x54, 0x50], 4, /first packet is reserved|first packet is/],
    ];
    for (const [bytes, version, why] of cases) {
      const r = read(Buffer.from(bytes), version);
      expect(r.verdict, Buffer.from(bytes).toString('hex')).toBe('invalid');
      expect(r.error).toMatch(why);
    }
  });
});

/** The first packets mqtt-packet's own parser reads from `bytes`, up to its first CONNACK or error. */
function reference(bytes: Uint8Array, version: Version): { connack?: IConnackPacket & { length: number }; error?: Error; other?: string } {
  const parser = mqttPacket.parser({ protocolVersion: version });
  const out: { connack?: IConnackPacket & { length: number }; error?: Error; other?: string } = {};
  let done = false;
  parser.on('packet', (p: Packet) => {
    if (done) return;
    if (p.cmd === 'connack') {
      out.connack = p as IConnackPacket & { length: number };
      done = true;
    } else if (!(p.cmd === 'auth' && version === 5)) {
      out.other = p.cmd;
      done = true;
    }
  });
  parser.on('error', (err: Error) => {
    if (done) return;
    out.error = err;
    done = true;
  });
  parser.parse(Buffer.from(bytes));
  return out;
}

const version = fc.constantFrom<Version>(3, 4, 5);
const cuts = fc.array(fc.integer({ min: 1, max: 8 }), { maxLength: 12 });

describe('ConnackReader against mqtt-packet (generated input)', () => {
  it('agrees on the code and session-present flag of every CONNACK mqtt-packet generates, however it is cut', () => {
    const properties = fc.record({
      sessionExpiryInterval: fc.integer({ min: 0, max: 0xffffffff }),
      assignedClientIdentifier: fc.string({ maxLength: 40 }),
      reasonString: fc.string({ maxLength: 200 }),
      serverKeepAlive: fc.integer({ min: 0, max: 0xffff }),
      userProperties: fc.dictionary(fc.string({ minLength: 1, maxLength: 8 }), fc.string({ maxLength: 30 }), { minKeys: 1, maxKeys: 3 }),
    }, { requiredKeys: [] });
    const v5Codes = fc.constantFrom(0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x8c, 0x90, 0x95, 0x97, 0x99, 0x9a, 0x9b, 0x9c, 0x9d, 0x9f);
    const authFirst = fc.integer({ min: 0, max: 2 });
    fc.assert(
      fc.property(version, fc.boolean(), fc.integer({ min: 0, max: 5 }), v5Codes, properties, authFirst, cuts, (v, sessionPresent, returnCode, reasonCode, props, auths, chunking) => {
        const code = v === 5 ? reasonCode : returnCode;
        const auth = v === 5 ? mqttPacket.generate({ cmd: 'auth', reasonCode: 0x18, properties: { authenticationMethod: 'x' } }, { protocolVersion: 5 }) : Buffer.alloc(0);
        const bytes = Buffer.concat([...Array.from({ length: v === 5 ? auths : 0 }, () => auth), connack(v, sessionPresent, code, v === 5 ? props : undefined)]);
        const expected = reference(bytes, v).connack!;
        const r = read(bytes, v, chunking);
        expect(r.verdict).toBe('connack');
        expect(r.code).toBe(v === 5 ? expected.reasonCode : expected.returnCode);
        expect(r.sessionPresent).toBe(expected.sessionPresent);
      }),
      { numRuns: 500 },
    );
  });

  it('never disagrees with mqtt-packet on arbitrary bytes: a CONNACK it reads is read the same, one it refuses is refused', () => {
    // Bytes that start like a CONNACK (or an AUTH) often enough to reach every step of the reader.
    const head = fc.oneof(fc.constant([0x20]), fc.constant([0x20, 0x02]), fc.constant([0xf0]), fc.constant([0x20, 0x03, 0x00]), fc.constant<number[]>([]));
    fc.assert(
      fc.property(version, head, fc.uint8Array({ maxLength: 24 }), cuts, (v, start, rest, chunking) => {
        const bytes = Buffer.concat([Buffer.from(start), rest]);
        const r = read(bytes, v, chunking);
        const ours: ConnackVerdict = r.verdict;
        const theirs = reference(bytes, v);
        // mqtt-packet reads a CONNACK of remaining length 0 or 1 (filling in a code); the
        // specification gives it at least two bytes, and so does this reader.
        if (theirs.connack && theirs.connack.length >= 2) {
          expect(ours).toBe('connack');
          expect(r.code).toBe(v === 5 ? theirs.connack.reasonCode : theirs.connack.returnCode);
          expect(r.sessionPresent).toBe(theirs.connack.sessionPresent);
        }
        // This reader decides from the first four bytes, so it may accept a CONNACK whose later
        // MQTT 5 properties mqtt-packet finds malformed; it never refuses one mqtt-packet reads.
        if (ours === 'invalid') expect(theirs.connack?.length ?? 0, 'mqtt-packet read a CONNACK this reader refused').toBeLessThan(2);
        // The converse: what mqtt-packet refuses in the part this reader reads (header, length,
        // flags), this reader refuses too; only MQTT 5's later parts may differ.
        if (ours === 'connack' && theirs.error) {
          expect(v, `mqtt-packet refused it: ${theirs.error.message}`).toBe(5);
          expect(theirs.error.message).not.toMatch(/connack flags|header flag|QoS bits/i);
        }
      }),
      { numRuns: 3000 },
    );
  });
});
