import fc from 'fast-check';
import {
  Command, INETProtocol, IPv4Address, IPv4ProxyAddress, IPv6Address, IPv6ProxyAddress, Peer, TransportProtocol, UnspecProxyAddress,
  V1ProxyProtocol, V2ProxyProtocol,
} from 'proxy-protocol-js';
import { describe, expect, it } from 'vitest';
import { proxyV2 } from '../src/proxy-header.ts';
import { inspectProxyHeader, type ProxyParseResult } from '../src/proxy-parser.ts';
import { encodeTlv } from '../src/tlv.ts';
import { canonicalV6 } from './decode.ts';

// Headers here come from proxy-protocol-js's encoders (independent of ours) or are written out
// byte by byte from the spec, never from the parser's own understanding of the format.

const MAX = 4096;
const CONNECT = Buffer.from('100d00044d5154540402003c000163', 'hex'); // the client's bytes after the header

const v1 = (proto: 'TCP4' | 'TCP6', src: string, dst: string, sport: number, dport: number, data = ''): Buffer =>
  Buffer.from(new V1ProxyProtocol(INETProtocol[proto], new Peer(src, sport), new Peer(dst, dport), data).build(), 'latin1');

const v4 = (a: string): IPv4Address => IPv4Address.createFrom(a.split('.').map(Number));
/** IPv6 text to the 16 bytes proxy-protocol-js wants (canonicalized by the WHATWG URL parser first). */
const v6 = (a: string): IPv6Address => {
  const groups = canonicalV6(a).split('::');
  const head = groups[0] ? groups[0].split(':') : [];
  const tail = groups[1] ? groups[1].split(':') : [];
  const all = groups.length === 2 ? [...head, ...Array<string>(8 - head.length - tail.length).fill('0'), ...tail] : head;
  return IPv6Address.createFrom(all.flatMap((g) => [parseInt(g, 16) >> 8, parseInt(g, 16) & 0xff]));
};

/** proxy-protocol-js's v2 builder; its length field covers the address block only, so `data` follows the header. */
const v2 = (command: Command, address: IPv4ProxyAddress | IPv6ProxyAddress | UnspecProxyAddress, data = Buffer.alloc(0)): Buffer =>
  Buffer.from(new V2ProxyProtocol(command, TransportProtocol.STREAM, address, new Uint8Array(data)).build());

const v2Ipv4 = (src: string, sport: number, dst: string, dport: number, data?: Buffer<ArrayBuffer>): Buffer =>
  v2(Command.PROXY, new IPv4ProxyAddress(v4(src), sport, v4(dst), dport), data);
const v2Ipv6 = (src: string, sport: number, dst: string, dport: number, data?: Buffer<ArrayBuffer>): Buffer =>
  v2(Command.PROXY, new IPv6ProxyAddress(v6(src), sport, v6(dst), dport), data);

/** A v2 header whose length field also covers `tlvs` (the spec's layout, written by hand). */
function withTlvs(header: Buffer, tlvs: Buffer, data = Buffer.alloc(0)): Buffer {
  const out = Buffer.concat([header, tlvs, data]);
  out.writeUInt16BE(header.readUInt16BE(14) + tlvs.length, 14);
  return out;
}

function expectDone(result: ProxyParseResult): Extract<ProxyParseResult, { kind: 'done' }> {
  if (result.kind !== 'done') throw new Error(`expected done, got ${JSON.stringify(result)}`);
  return result;
}

function expectReject(result: ProxyParseResult, reason: 'missing' | 'invalid', detail: RegExp): void {
  expect(result).toMatchObject({ kind: 'reject', reason });
  expect((result as { detail: string }).detail).toMatch(detail);
}

/** Every strict prefix asks for more (never a verdict on half a header); the whole header is done. */
function expectIncremental(bytes: Buffer, headerLength: number): void {
  for (let k = 0; k < headerLength; k++) expect(inspectProxyHeader(bytes.subarray(0, k), MAX).kind, `prefix of ${k} bytes`).toBe('need-more');
  expect(expectDone(inspectProxyHeader(bytes, MAX)).length).toBe(headerLength);
}

describe('inspectProxyHeader: headers from an independent encoder (proxy-protocol-js)', () => {
  it.each([
    ['v1 TCP4', v1('TCP4', '192.0.2.10', '10.0.0.1', 50123, 1883), 'IPv4', '192.0.2.10', '10.0.0.1'],
    ['v1 TCP6', v1('TCP6', '2001:db8::7', '2001:db8::1', 50123, 1883), 'IPv6', '2001:db8::7', '2001:db8::1'],
    ['v1 TCP6 loopback', v1('TCP6', '::1', '::1', 50123, 1883), 'IPv6', '::1', '::1'],
    ['v2 IPv4', v2Ipv4('192.0.2.10', 50123, '10.0.0.1', 1883), 'IPv4', '192.0.2.10', '10.0.0.1'],
    ['v2 IPv6', v2Ipv6('2001:db8::7', 50123, '2001:db8::1', 1883), 'IPv6', '2001:db8::7', '2001:db8::1'],
    ['v2 IPv6 loopback', v2Ipv6('::1', 50123, '::1', 1883), 'IPv6', '::1', '::1'],
  ] as const)('%s: the source is the client, the destination what it dialled; the bytes after are untouched', (_case, header, family, src, dst) => {
    const bytes = Buffer.concat([header, CONNECT]);
    const { header: parsed, length } = expectDone(inspectProxyHeader(bytes, MAX));
    expect(length).toBe(header.length);
    expect(parsed.command).toBe('proxy');
    expect(parsed.version).toBe(header[0] === 0x50 ? 1 : 2);
    expect(parsed.addresses).toMatchObject({ family, sourcePort: 50123, destinationPort: 1883 });
    const canon = (a: string): string => (family === 'IPv6' ? canonicalV6(a) : a);
    expect(canon(parsed.addresses!.sourceAddress)).toBe(canon(src));
    expect(canon(parsed.addresses!.destinationAddress)).toBe(canon(dst));
    expect(bytes.subarray(length)).toEqual(CONNECT);
    expectIncremental(bytes, header.length);
  });

  it('v2 LOCAL (a balancer health check): done, no addresses, so the real endpoints stay', () => {
    const header = v2(Command.LOCAL, new UnspecProxyAddress());
    const { header: parsed, length } = expectDone(inspectProxyHeader(Buffer.concat([header, CONNECT]), MAX));
    expect(parsed).toEqual({ version: 2, command: 'local', addresses: undefined, tlvs: [] });
    expect(length).toBe(16);
  });

  it('v2 LOCAL with an address block: the block is discarded, not read', () => {
    const header = v2(Command.LOCAL, new IPv4ProxyAddress(v4('192.0.2.1'), 1, v4('10.0.0.1'), 2));
    expect(expectDone(inspectProxyHeader(header, MAX))).toMatchObject({ length: 28, header: { command: 'local', addresses: undefined } });
  });

  it('v2 PROXY with the UNSPEC family: done, no addresses (the spec: use the real endpoints)', () => {
    const header = v2(Command.PROXY, new UnspecProxyAddress());
    expect(expectDone(inspectProxyHeader(header, MAX)).header).toMatchObject({ command: 'proxy', addresses: undefined });
  });

  it('v2 DGRAM and UNIX families are accepted without addresses (as HAProxy does)', () => {
    const dgram = v2Ipv4('192.0.2.1', 1, '10.0.0.1', 2);
    dgram[13] = 0x12; // INET + DGRAM
    expect(expectDone(inspectProxyHeader(dgram, MAX)).header.addresses).toBeUndefined();
    const unix = Buffer.concat([v2(Command.PROXY, new UnspecProxyAddress()), Buffer.alloc(216)]);
    unix[13] = 0x31; // UNIX + STREAM
    unix.writeUInt16BE(216, 14);
    expect(expectDone(inspectProxyHeader(unix, MAX))).toMatchObject({ length: 232, header: { addresses: undefined } });
  });
});

describe('inspectProxyHeader: v1 from the spec', () => {
  it.each([
    ['PROXY UNKNOWN\r\n'],
    // "the receiver must ignore anything presented before the CRLF"
    ['PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n'],
  ])('UNKNOWN: %j is done without addresses', (line) => {
    const bytes = Buffer.concat([Buffer.from(line, 'latin1'), CONNECT]);
    expect(expectDone(inspectProxyHeader(bytes, MAX))).toMatchObject({ length: line.length, header: { version: 1, command: 'proxy', addresses: undefined } });
    expectIncremental(bytes, line.length);
  });

  it('takes the longest legal line (107 bytes) and refuses one byte more', () => {
    // The spec's own worst case: UNKNOWN followed by the longest TCP6 fields.
    const f = 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff';
    const longest = `PROXY UNKNOWN ${f} ${f} 65535 65535\r\n`;
    expect(longest.length).toBe(107);
    expect(expectDone(inspectProxyHeader(Buffer.from(longest, 'latin1'), MAX)).length).toBe(107);
    const longestTcp6 = `PROXY TCP6 ${f} ${f} 65535 65535\r\n`;
    expect(expectDone(inspectProxyHeader(Buffer.from(longestTcp6, 'latin1'), MAX)).header.addresses).toMatchObject({ sourceAddress: f, sourcePort: 65535 });
    const tooLong = `PROXY UNKNOWN ${'x'.repeat(107 - 'PROXY UNKNOWN \r\n'.length + 1)}\r\n`;
    expectReject(inspectProxyHeader(Buffer.from(tooLong, 'latin1'), MAX), 'invalid', /no CRLF within 107 bytes/);
    // ... as soon as the 107th byte is not the end, without waiting for more.
    expectReject(inspectProxyHeader(Buffer.from('PROXY UNKNOWN '.padEnd(106, 'x'), 'latin1'), MAX), 'invalid', /no CRLF/);
  });

  it.each([
    ['PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n', /protocol "TCP5"/],
    ['PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n', /4 single-space separated fields/],
    ['PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n', /4 single-space separated fields/],
    ['PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n', /4 single-space separated fields/],
    ['PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n', /"1.2.3" is not an IPv4/],
    ['PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n', /"01.2.3.4" is not an IPv4/],
    ['PROXY TCP4 ::1 5.6.7.8 1 2\r\n', /"::1" is not an IPv4/],
    ['PROXY TCP6 1.2.3.4 ::1 1 2\r\n', /"1.2.3.4" is not an IPv6/],
    ['PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n', /"fe80::1%eth0" is not an IPv6/],
    ['PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n', /ports/],
    ['PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n', /ports/],
    ['PROXY TCP4 1.2.3.4 5.6.7.8 1 0x2\r\n', /ports/],
    ['PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX', /CR not followed by LF/],
    ['PROXY TCP4 1.2.3.4\n5.6.7.8 1 2\r\n', /non-printable byte 0x0a/],
    ['PROXY TCP4 1.2.3.4\x005.6.7.8 1 2\r\n', /non-printable byte 0x00/],
  ])('refuses %j as invalid', (line, detail) => {
    expectReject(inspectProxyHeader(Buffer.from(line, 'latin1'), MAX), 'invalid', detail);
  });
});

describe('inspectProxyHeader: v2 from the spec', () => {
  const base = (): Buffer => v2Ipv4('192.0.2.10', 50123, '10.0.0.1', 1883);

  it('skips TLVs, known and unknown, and hands them over with the header; the client bytes follow intact', () => {
    const tlvs = Buffer.concat([
      encodeTlv(0x04, Buffer.alloc(5)), // NOOP padding
      encodeTlv(0x01, Buffer.from('mqtt')), // ALPN
      encodeTlv(0xea, Buffer.from('\x01vpce-0123456789abcdef', 'latin1')), // AWS's own type
      encodeTlv(0x02, Buffer.alloc(0)), // an empty value is legal
    ]);
    const bytes = withTlvs(base(), tlvs, CONNECT);
    const { header, length } = expectDone(inspectProxyHeader(bytes, MAX));
    expect(length).toBe(28 + tlvs.length);
    expect(header.tlvs.map((t) => [t.type, t.value.toString('latin1')])).toEqual([[0x04, '\0\0\0\0\0'], [0x01, 'mqtt'], [0xea, '\x01vpce-0123456789abcdef'], [0x02, '']]);
    expect(header.addresses).toMatchObject({ sourceAddress: '192.0.2.10', sourcePort: 50123 });
    expect(bytes.subarray(length)).toEqual(CONNECT);
    expectIncremental(bytes, length);
  });

  it('asks for exactly the declared length once the fixed part is in (no re-parse per byte)', () => {
    const bytes = withTlvs(base(), encodeTlv(0x04, Buffer.alloc(100)));
    expect(inspectProxyHeader(bytes.subarray(0, 15), MAX)).toEqual({ kind: 'need-more', atLeast: 16 });
    expect(inspectProxyHeader(bytes.subarray(0, 16), MAX)).toEqual({ kind: 'need-more', atLeast: bytes.length });
  });

  it('a checksummed header (CRC32C TLV) is checked: intact passes, one flipped bit is refused', () => {
    const header = proxyV2({ sourceAddress: '192.0.2.10', sourcePort: 1, destinationAddress: '10.0.0.1', destinationPort: 2 }, { crc32c: true });
    expect(expectDone(inspectProxyHeader(header, MAX)).header.tlvs.map((t) => t.type)).toEqual([0x03]);
    const damaged = Buffer.from(header);
    damaged[17]! ^= 0x01; // the source address
    expectReject(inspectProxyHeader(damaged, MAX), 'invalid', /CRC32C is 0x[0-9a-f]+, the header's checksum is/);
    const short = withTlvs(base(), encodeTlv(0x03, Buffer.alloc(3)));
    expectReject(inspectProxyHeader(short, MAX), 'invalid', /CRC32C TLV has 3 bytes/);
  });

  it('accepts a header of exactly maxHeaderBytes and refuses a longer one from its first 16 bytes', () => {
    const atLimit = withTlvs(base(), encodeTlv(0x04, Buffer.alloc(200 - 28 - 3)));
    expect(atLimit.length).toBe(200);
    expect(expectDone(inspectProxyHeader(atLimit, 200)).length).toBe(200);
    const over = withTlvs(base(), encodeTlv(0x04, Buffer.alloc(200 - 28 - 3 + 1)));
    expectReject(inspectProxyHeader(over.subarray(0, 16), 200), 'invalid', /declares 201 bytes, more than maxHeaderBytes \(200\)/);
  });

  it.each([
    ['version 1 in the version nibble', (b: Buffer) => (b[12] = 0x11), /version nibble is 1/],
    ['command 2', (b: Buffer) => (b[12] = 0x22), /command 2/],
    ['family 4', (b: Buffer) => (b[13] = 0x41), /family\/transport byte 0x41/],
    ['transport 3', (b: Buffer) => (b[13] = 0x13), /family\/transport byte 0x13/],
    ['an INET block shorter than 12 bytes', (b: Buffer) => b.writeUInt16BE(11, 14), /INET address block needs 12 bytes, the header declares 11/],
    ['an INET6 family with an INET-sized block', (b: Buffer) => (b[13] = 0x21), /INET6 address block needs 36 bytes, the header declares 12/],
  ])('refuses %s as invalid', (_case, damage, detail) => {
    const bytes = base();
    damage(bytes);
    expectReject(inspectProxyHeader(bytes, MAX), 'invalid', detail);
  });

  it.each([
    ['a TLV running past the declared length', encodeTlv(0x01, Buffer.from('mqtt')).subarray(0, 6), /TLV 0x01 declares 4 bytes but only 3 remain/],
    ['stray bytes too short to be a TLV', Buffer.from([0x04, 0x00]), /2 stray byte\(s\) after the last TLV/],
  ])('refuses %s as invalid (it would read into the client bytes)', (_case, tlvs, detail) => {
    expectReject(inspectProxyHeader(withTlvs(base(), tlvs, CONNECT), MAX), 'invalid', detail);
  });

  it('a signature that breaks off is not a header at all (missing), whatever follows', () => {
    const broken = base();
    broken[6] = 0x00;
    expectReject(inspectProxyHeader(broken, MAX), 'missing', /not a PROXY v1 or v2 signature/);
  });
});

describe('inspectProxyHeader: connections without a header', () => {
  it.each([
    ['an MQTT CONNECT', CONNECT, /MQTT CONNECT, not a PROXY header/],
    ['a TLS ClientHello', Buffer.from('160301020001', 'hex'), /TLS handshake, not a PROXY header/],
    ['HTTP', Buffer.from('GET / HTTP/1.1\r\n'), /not a PROXY v1 or v2 signature/],
    ['"PROXY" without its space', Buffer.from('PROXYTCP4'), /not a PROXY v1 or v2 signature/],
  ])('%s is refused as missing from its first byte(s)', (_case, bytes, detail) => {
    expectReject(inspectProxyHeader(bytes, MAX), 'missing', detail);
  });

  it('is undecided on a prefix both signatures could still start with', () => {
    expect(inspectProxyHeader(Buffer.from('PROX'), MAX).kind).toBe('need-more');
    expect(inspectProxyHeader(Buffer.from([0x0d, 0x0a, 0x0d]), MAX).kind).toBe('need-more');
    expect(inspectProxyHeader(Buffer.alloc(0), MAX).kind).toBe('need-more');
  });
});

describe('inspectProxyHeader: properties', () => {
  const port = fc.integer({ min: 0, max: 65535 });
  const data = fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a));

  it('decodes what proxy-protocol-js encodes, for random addresses, ports and trailing bytes', () => {
    const header = fc.oneof(
      fc.tuple(fc.ipV4(), fc.ipV4(), port, port).map(([s, d, sp, dp]) => ({ bytes: v1('TCP4', s, d, sp, dp), family: 'IPv4', s, d, sp, dp })),
      fc.tuple(fc.ipV6(), fc.ipV6(), port, port).map(([s, d, sp, dp]) => ({ bytes: v1('TCP6', s, d, sp, dp), family: 'IPv6', s, d, sp, dp })),
      fc.tuple(fc.ipV4(), fc.ipV4(), port, port).map(([s, d, sp, dp]) => ({ bytes: v2Ipv4(s, sp, d, dp), family: 'IPv4', s, d, sp, dp })),
      fc.tuple(fc.ipV6(), fc.ipV6(), port, port).map(([s, d, sp, dp]) => ({ bytes: v2Ipv6(s, sp, d, dp), family: 'IPv6', s, d, sp, dp })),
    );
    fc.assert(fc.property(header, data, (h, rest) => {
      const { header: parsed, length } = expectDone(inspectProxyHeader(Buffer.concat([h.bytes, rest]), MAX));
      const canon = (a: string): string => (h.family === 'IPv6' ? canonicalV6(a) : a);
      expect(length).toBe(h.bytes.length);
      expect(parsed.addresses).toEqual({ family: h.family, sourceAddress: expect.any(String), destinationAddress: expect.any(String), sourcePort: h.sp, destinationPort: h.dp });
      expect(canon(parsed.addresses!.sourceAddress)).toBe(canon(h.s));
      expect(canon(parsed.addresses!.destinationAddress)).toBe(canon(h.d));
    }), { numRuns: 500 });
  });

  it('never throws and never claims more bytes than it was given, whatever arrives', () => {
    const prefix = fc.constantFrom(Buffer.alloc(0), Buffer.from('PROXY '), v2Ipv4('1.2.3.4', 1, '5.6.7.8', 2).subarray(0, 12), v2Ipv4('1.2.3.4', 1, '5.6.7.8', 2).subarray(0, 16));
    fc.assert(fc.property(prefix, fc.uint8Array({ maxLength: 300 }), (p, tail) => {
      const bytes = Buffer.concat([p, Buffer.from(tail)]);
      const result = inspectProxyHeader(bytes, MAX);
      if (result.kind === 'done') expect(result.length).toBeLessThanOrEqual(bytes.length);
    }), { numRuns: 2000 });
  });
});
