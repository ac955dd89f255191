import { isIPv4, isIPv6 } from 'node:net';

export interface ProxyEndpoints {
  readonly sourceAddress: string;
  readonly sourcePort: number;
  readonly destinationAddress: string;
  readonly destinationPort: number;
}

/** The 12-byte PROXY protocol v2 signature. */
const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const V2_PROXY_COMMAND = 0x21; // version 2, command PROXY
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

/** PROXY protocol v2: the binary header with the TCP over IPv4 or IPv6 address block, no TLVs. */
export function proxyV2(e: ProxyEndpoints): Buffer {
  const { family, src, dst } = normalize(e);
  const addressLength = family === 'IPv4' ? 12 : family === 'IPv6' ? 36 : 0;
  const header = Buffer.alloc(16 + addressLength);
  V2_SIGNATURE.copy(header, 0);
  header[12] = V2_PROXY_COMMAND;
  header[13] = family === 'IPv4' ? AF_INET_STREAM : family === 'IPv6' ? AF_INET6_STREAM : AF_UNSPEC;
  header.writeUInt16BE(addressLength, 14);
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
