import fc from 'fast-check';
import { isIPv4 } from 'node:net';
import { describe, expect, it } from 'vitest';
import { proxyV1, proxyV2, proxyV2Local, type ProxyEndpoints } from '../src/proxy-header.ts';
import { encodeTlv } from '../src/tlv.ts';
import { canonicalV6, decode } from './decode.ts';

// Every header is decoded by proxy-protocol-js (see decode.ts), not by our own code, and compared
// with the addresses we expect a broker to see.

const ends = (sourceAddress: string, destinationAddress: string, sourcePort = 50123, destinationPort = 1883): ProxyEndpoints =>
  ({ sourceAddress, sourcePort, destinationAddress, destinationPort });

// [case, endpoints, expected protocol, expected source, expected destination]
const CASES: [string, ProxyEndpoints, 'TCP4' | 'TCP6', string, string][] = [
  ['IPv4', ends('192.0.2.10', '10.0.0.1'), 'TCP4', '192.0.2.10', '10.0.0.1'],
  ['IPv4 loopback', ends('127.0.0.1', '127.0.0.1'), 'TCP4', '127.0.0.1', '127.0.0.1'],
  ['IPv6 loopback', ends('::1', '::1'), 'TCP6', '::1', '::1'],
  ['IPv6 compressed in the middle', ends('2001:db8::7', 'fe80::1:2'), 'TCP6', '2001:db8::7', 'fe80::1:2'],
  ['IPv6 written in full', ends('2001:0db8:0000:0000:0000:0000:0000:0001', 'abcd:ef01:2345:6789:abcd:ef01:2345:6789'), 'TCP6', '2001:db8::1', 'abcd:ef01:2345:6789:abcd:ef01:2345:6789'],
  ['IPv6 upper case', ends('2001:DB8::A', '::1'), 'TCP6', '2001:db8::a', '::1'],
  ['IPv6 unspecified', ends('::', '1::'), 'TCP6', '::', '1::'],
  // A dual-stack listener reports IPv4 clients as ::ffff:a.b.c.d; brokers want plain IPv4.
  ['IPv4-mapped IPv6 on both ends', ends('::ffff:192.0.2.10', '::ffff:10.0.0.1'), 'TCP4', '192.0.2.10', '10.0.0.1'],
  ['IPv4-mapped source, IPv4 destination', ends('::ffff:192.0.2.10', '10.0.0.1'), 'TCP4', '192.0.2.10', '10.0.0.1'],
  // Mixed families cannot share a TCP4 line, so the IPv4 end is written as mapped IPv6.
  ['IPv4 source, IPv6 destination', ends('192.0.2.10', '2001:db8::1'), 'TCP6', '::ffff:192.0.2.10', '2001:db8::1'],
  ['IPv6 source, IPv4 destination', ends('2001:db8::1', '10.0.0.1'), 'TCP6', '2001:db8::1', '::ffff:10.0.0.1'],
  ['IPv6 source, IPv4-mapped destination', ends('2001:db8::1', '::ffff:10.0.0.1'), 'TCP6', '2001:db8::1', '::ffff:10.0.0.1'],
];

const canon = (proto: 'TCP4' | 'TCP6', address: string): string => (proto === 'TCP6' ? canonicalV6(address) : address);

describe.each([
  ['proxyV1', proxyV1, 1],
  ['proxyV2', proxyV2, 2],
] as const)('%s', (_name, build, version) => {
  it.each(CASES)('encodes %s', (_case, endpoints, proto, src, dst) => {
    const decoded = decode(build(endpoints));
    expect(decoded).toMatchObject({
      version, proto, src: canon(proto, src), dst: canon(proto, dst), srcPort: endpoints.sourcePort, dstPort: endpoints.destinationPort,
    });
    expect(decoded.rest.length).toBe(0); // exactly one header, nothing trailing
  });

  // A zone id is not part of an IPv6 address on the wire (receivers parse it with inet_pton and
  // reject the header), so both versions drop it.
  it('drops an IPv6 zone id (fe80::1%eth0 is sent as fe80::1)', () => {
    const header = build(ends('fe80::1%eth0', 'fe80::2%eth0'));
    expect(header.includes('%')).toBe(false);
    expect(decode(header)).toMatchObject({ proto: 'TCP6', src: 'fe80::1', dst: 'fe80::2' });
  });

  it.each([
    [0, 0],
    [1, 65535],
    [65535, 1],
    [256, 255], // both bytes of the port matter
  ])('encodes ports %d and %d', (sourcePort, destinationPort) => {
    expect(decode(build(ends('10.0.0.1', '10.0.0.2', sourcePort, destinationPort)))).toMatchObject({ srcPort: sourcePort, dstPort: destinationPort });
    expect(decode(build(ends('::1', '::2', sourcePort, destinationPort)))).toMatchObject({ srcPort: sourcePort, dstPort: destinationPort });
  });

  it.each([
    ['no addresses (socket already closed)', ends('', '')],
    ['a host name', ends('broker.local', '10.0.0.1')],
    ['a malformed address', ends('10.0.0', '10.0.0.1')],
  ])('falls back to UNKNOWN for %s', (_case, endpoints) => {
    const decoded = decode(build(endpoints));
    expect(decoded).toMatchObject({ version, proto: 'UNKNOWN' });
    expect(decoded.rest.length).toBe(0);
  });

  it('round-trips random addresses and ports of either family', () => {
    const address = fc.oneof(fc.ipV4(), fc.ipV6(), fc.ipV4().map((a) => `::ffff:${a}`));
    const port = fc.integer({ min: 0, max: 65535 });
    fc.assert(
      fc.property(address, address, port, port, (s, d, sp, dp) => {
        const unmapped = (a: string): string => (a.toLowerCase().startsWith('::ffff:') && isIPv4(a.slice(7)) ? a.slice(7) : a);
        const both4 = isIPv4(unmapped(s)) && isIPv4(unmapped(d));
        const expected = (a: string): string => (both4 ? unmapped(a) : canonicalV6(isIPv4(a) ? `::ffff:${a}` : a));
        expect(decode(build(ends(s, d, sp, dp)))).toMatchObject({
          version, proto: both4 ? 'TCP4' : 'TCP6', src: expected(s), dst: expected(d), srcPort: sp, dstPort: dp,
        });
      }),
      { numRuns: 1000 },
    );
  });
});

describe('proxyV1 specifics', () => {
  it('writes exactly the spec line', () => {
    expect(proxyV1(ends('192.0.2.10', '10.0.0.1', 5, 1883)).toString('latin1')).toBe('PROXY TCP4 192.0.2.10 10.0.0.1 5 1883\r\n');
    expect(proxyV1(ends('', '')).toString('latin1')).toBe('PROXY UNKNOWN\r\n');
  });

  it('stays within the 107-byte maximum line length of the spec', () => {
    const longest = 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff';
    expect(proxyV1(ends(longest, longest, 65535, 65535)).length).toBeLessThanOrEqual(107);
  });
});

describe('proxyV2 specifics', () => {
  it.each([
    ['IPv4', ends('10.0.0.1', '10.0.0.2'), 0x11, 12],
    ['IPv6', ends('::1', '::2'), 0x21, 36],
    ['UNSPEC', ends('', ''), 0x00, 0],
  ])('declares the %s family and the address block length it carries', (_case, endpoints, familyByte, length) => {
    const header = proxyV2(endpoints);
    expect(header[12]).toBe(0x21); // version 2, PROXY command
    expect(header[13]).toBe(familyByte);
    expect(header.readUInt16BE(14)).toBe(length);
    expect(header.length).toBe(16 + length);
  });

  it('appends TLVs after the address block and counts them in the length field', () => {
    const tlvs = [encodeTlv(0x01, Buffer.from('mqtt')), encodeTlv(0x02, Buffer.from('a.example'))];
    const header = proxyV2(ends('10.0.0.1', '10.0.0.2'), { tlvs });
    expect(header.readUInt16BE(14)).toBe(12 + 7 + 12);
    expect(header.subarray(28).toString('hex')).toBe(Buffer.concat(tlvs).toString('hex'));
    // proxy-protocol-js ignores TLVs: it sees them as bytes after an otherwise unchanged header.
    expect(decode(header)).toMatchObject({ proto: 'TCP4', src: '10.0.0.1', dst: '10.0.0.2', rest: Buffer.concat(tlvs) });
  });

  it('puts the CRC32C TLV first, as HAProxy does', () => {
    const header = proxyV2(ends('10.0.0.1', '10.0.0.2'), { crc32c: true, tlvs: [encodeTlv(0x02, Buffer.from('a'))] });
    expect(header[28]).toBe(0x03);
    expect(header.readUInt16BE(29)).toBe(4);
    expect(header[35]).toBe(0x02);
  });

  it('refuses TLVs that would overflow the 16-bit length', () => {
    expect(() => proxyV2(ends('10.0.0.1', '10.0.0.2'), { tlvs: [encodeTlv(0x04, Buffer.alloc(0xffff - 12 - 3 + 1))] })).toThrow(/exceeds the 16-bit length field/);
  });

  it('LOCAL is the 16-byte header with command 0 and no addresses (what HAProxy\'s check-send-proxy sends)', () => {
    expect(proxyV2Local().toString('hex')).toBe('0d0a0d0a000d0a515549540a20000000');
  });
});
