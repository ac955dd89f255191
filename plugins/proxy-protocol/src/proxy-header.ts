import { isIPv4, isIPv6 } from 'node:net';
import { crc32c } from './crc32c.ts';
import { encodeTlv, PP2_TYPE_CRC32C } from './tlv.ts';

export interface ProxyEndpoints {
  readonly sourceAddress: string;
  readonly sourcePort: number;
  readonly destinationAddress: string;
  readonly destinationPort: number;
}

/** The 12-byte PROXY protocol v2 signature (the binary header starts with it). */
export const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const V2_PROXY_COMMAND = 0x21; // version 2, command PROXY
const V2_LOCAL_COMMAND = 0x20; // version 2, command LOCAL
const AF_INET_STREAM = 0x11;
const AF_INET6_STREAM = 0x21;
const AF_UNSPEC = 0x00;
const MAPPED_PREFIX = '::ffff:';

type Family = 'IPv4' | 'IPv6' | undefined;

/**
 * Chooses one address family for both ends: a dual-stack listener reports IPv4 clients as
 * `::ffff:a.b.c.d`, which brokers want to see as plain IPv4; mixed families become IPv6.
 */
function normalize(e: ProxyEndpoints): { family: Family; src: string; dst: string } {
  // A zone id (fe80::1%eth0) means nothing to the broker, and PROXY parsers reject it.
  const unmap = (address: string): string => {
    const zone = address.indexOf('%');
    const a = zone >= 0 ? address.slice(0, zone) : address;
    return a.startsWith(MAPPED_PREFIX) && isIPv4(a.slice(MAPPED_PREFIX.length)) ? a.slice(MAPPED_PREFIX.length) : a;
  };
  const src = unmap(e.sourceAddress);
  const dst = unmap(e.destinationAddress);
  if (isIPv4(src) && isIPv4(dst)) return { family: 'IPv4', src, dst };
  const toV6 = (a: string): string => (isIPv4(a) ? `${MAPPED_PREFIX}${a}` : a);
  if ((isIPv4(src) || isIPv6(src)) && (isIPv4(dst) || isIPv6(dst))) return { family: 'IPv6', src: toV6(src), dst: toV6(dst) };
  return { family: undefined, src, dst };
}

/** PROXY protocol v1: one text line, `PROXY TCP4|TCP6 src dst sport dport\r\n` (or `PROXY UNKNOWN`). */
export function proxyV1(e: ProxyEndpoints): Buffer {
  const { family, src, dst } = normalize(e);
  if (!family) return Buffer.from('PROXY UNKNOWN\r\n', 'latin1');
  const proto = family === 'IPv4' ? 'TCP4' : 'TCP6';
  return Buffer.from(`PROXY ${proto} ${src} ${dst} ${e.sourcePort} ${e.destinationPort}\r\n`, 'latin1');
}

/** What a v2 header may carry after its address block. */
export interface V2Extensions {
  /** Encoded TLVs (see encodeTlv), appended in this order. */
  readonly tlvs?: readonly Buffer[];
  /**
   * Add a CRC32C TLV (0x03) checksumming the whole header, first like HAProxy's, so a receiver
   * that checks it (HAProxy does) drops a header damaged on the way.
   */
  readonly crc32c?: boolean;
}

/** The 4-byte value of the CRC TLV is zero while the checksum is computed (spec 2.2.4). */
const CRC_TLV_PLACEHOLDER = encodeTlv(PP2_TYPE_CRC32C, Buffer.alloc(4));

/**
 * PROXY protocol v2: the binary header, command PROXY, with the TCP over IPv4 or IPv6 address
 * block (or UNSPEC with none when the addresses are unknown: the receiver then keeps its own), and
 * optionally TLVs.
 */
export function proxyV2(e: ProxyEndpoints, extensions: V2Extensions = {}): Buffer {
  const { family, src, dst } = normalize(e);
  const addressLength = family === 'IPv4' ? 12 : family === 'IPv6' ? 36 : 0;
  const tlvs = [...(extensions.crc32c ? [CRC_TLV_PLACEHOLDER] : []), ...(extensions.tlvs ?? [])];
  const tlvLength = tlvs.reduce((n, t) => n + t.length, 0);
  if (addressLength + tlvLength > 0xffff) throw new RangeError(`PROXY v2 header of ${16 + addressLength + tlvLength} bytes exceeds the 16-bit length field`);
  const header = Buffer.alloc(16 + addressLength + tlvLength);
  V2_SIGNATURE.copy(header, 0);
  header[12] = V2_PROXY_COMMAND;
  header[13] = family === 'IPv4' ? AF_INET_STREAM : family === 'IPv6' ? AF_INET6_STREAM : AF_UNSPEC;
  header.writeUInt16BE(addressLength + tlvLength, 14);
  if (family === 'IPv4') {
    writeIPv4(header, 16, src);
    writeIPv4(header, 20, dst);
    header.writeUInt16BE(e.sourcePort, 24);
    header.writeUInt16BE(e.destinationPort, 26);
  } else if (family === 'IPv6') {
    writeIPv6(header, 16, src);
    writeIPv6(header, 32, dst);
    header.writeUInt16BE(e.sourcePort, 48);
    header.writeUInt16BE(e.destinationPort, 50);
  }
  let offset = 16 + addressLength;
  for (const tlv of tlvs) offset += tlv.copy(header, offset);
  if (extensions.crc32c) header.writeUInt32BE(crc32c(header), 16 + addressLength + 3);
  return header;
}

/**
 * PROXY protocol v2 LOCAL: "this connection is the proxy's own" (a health check), no addresses.
 * The receiver keeps the real endpoints of the connection.
 */
export function proxyV2Local(): Buffer {
  const header = Buffer.alloc(16);
  V2_SIGNATURE.copy(header, 0);
  header[12] = V2_LOCAL_COMMAND;
  header[13] = AF_UNSPEC;
  return header;
}

function writeIPv4(buf: Buffer, offset: number, address: string): void {
  const parts = address.split('.');
  for (let i = 0; i < 4; i++) buf[offset + i] = Number(parts[i]);
}

function writeIPv6(buf: Buffer, offset: number, address: string): void {
  let text = address;
  // An embedded dotted quad (::ffff:1.2.3.4) is two 16-bit groups.
  const quad = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (quad) {
    const p = quad[1]!.split('.').map(Number);
    text = `${text.slice(0, -quad[1]!.length)}${((p[0]! << 8) | p[1]!).toString(16)}:${((p[2]! << 8) | p[3]!).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? text.split('::') as [string, string] : [text, undefined];
  const headGroups = head ? head.split(':') : [];
  const tailGroups = tail ? tail.split(':') : [];
  const groups = tail === undefined ? headGroups : [...headGroups, ...Array<string>(8 - headGroups.length - tailGroups.length).fill('0'), ...tailGroups];
  for (let i = 0; i < 8; i++) buf.writeUInt16BE(parseInt(groups[i] ?? '0', 16), offset + i * 2);
}
