import { isIPv4, isIPv6, SocketAddress } from 'node:net';
import { crc32c } from './crc32c.ts';
import { V2_SIGNATURE } from './proxy-header.ts';
import { PP2_TYPE_CRC32C, splitTlvs, type Tlv } from './tlv.ts';

/** The original connection a PROXY header describes (source = the client). */
export interface ProxyAddresses {
  readonly family: 'IPv4' | 'IPv6';
  readonly sourceAddress: string;
  readonly sourcePort: number;
  readonly destinationAddress: string;
  readonly destinationPort: number;
}

export interface ProxyHeader {
  readonly version: 1 | 2;
  /** `local`: v2 LOCAL, the proxy's own connection (a health check); its addresses are not relayed. */
  readonly command: 'proxy' | 'local';
  /**
   * The relayed endpoints, for TCP over IPv4 or IPv6. Undefined for LOCAL, v1 UNKNOWN and the v2
   * families that do not describe a TCP/IP connection (UNSPEC, UNIX, DGRAM): the receiver then
   * keeps the real endpoints of the connection, as the spec asks.
   */
  readonly addresses: ProxyAddresses | undefined;
  /** v2 TLVs in header order (empty for v1 and LOCAL). The CRC32C one has been checked. */
  readonly tlvs: readonly Tlv[];
}

/**
 * The three outcomes of looking at the bytes received so far, like the CONNECT sniffer's.
 * `reject` says `missing` when the bytes do not start with either PROXY signature (a client that
 * sends no header at all), `invalid` when they do but the header is malformed or too long.
 */
export type ProxyParseResult =
  | { readonly kind: 'need-more'; readonly atLeast?: number }
  | { readonly kind: 'done'; readonly header: ProxyHeader; readonly length: number }
  | { readonly kind: 'reject'; readonly reason: 'missing' | 'invalid'; readonly detail: string };

/** The longest v1 line the spec allows, CRLF included (a TCP6 line with the longest addresses). */
export const V1_MAX_LENGTH = 107;
/** The fixed part of a v2 header: signature, version/command, family/transport, length. */
export const V2_FIXED_LENGTH = 16;
/** The smallest header size limit that still fits every v1 line and a v2 IPv6 header with no TLVs. */
export const MIN_MAX_HEADER_BYTES = V1_MAX_LENGTH;
/** A v2 header cannot be longer than its 16-bit length field allows. */
export const MAX_MAX_HEADER_BYTES = V2_FIXED_LENGTH + 0xffff;

const V1_PREFIX = Buffer.from('PROXY ', 'latin1');
const NEED_MORE: ProxyParseResult = Object.freeze({ kind: 'need-more' });
const CR = 0x0d;
const LF = 0x0a;
/** Address block size by v2 family: UNSPEC, INET, INET6, UNIX. */
const ADDRESS_LENGTH = [0, 12, 36, 216] as const;
const FAMILY_NAMES = ['UNSPEC', 'INET', 'INET6', 'UNIX'] as const;
const STREAM = 0x1;

/**
 * Decides whether `view` (every byte received so far) starts with a complete PROXY protocol v1 or
 * v2 header. Pure and synchronous: it never consumes or changes the bytes, so the caller can hand
 * everything after `length` to the next stage untouched. It rejects as early as the bytes allow
 * (a foreign first byte, an oversized declared length) so a bad peer costs little.
 */
export function inspectProxyHeader(view: Buffer, maxBytes: number): ProxyParseResult {
  if (view.length === 0) return NEED_MORE;
  if (startsLike(view, V1_PREFIX)) return view.length < V1_PREFIX.length ? NEED_MORE : parseV1(view);
  if (startsLike(view, V2_SIGNATURE)) return view.length < V2_FIXED_LENGTH ? { kind: 'need-more', atLeast: V2_FIXED_LENGTH } : parseV2(view, maxBytes);
  return { kind: 'reject', reason: 'missing', detail: describeForeign(view) };
}

/** Whether the bytes so far agree with `signature` (all of it, or as much as has arrived). */
function startsLike(view: Buffer, signature: Buffer): boolean {
  const n = Math.min(view.length, signature.length);
  return view.compare(signature, 0, n, 0, n) === 0;
}

/** `PROXY TCP4|TCP6 <src> <dst> <sport> <dport>\r\n` or `PROXY UNKNOWN[ anything]\r\n`. */
function parseV1(view: Buffer): ProxyParseResult {
  // The CR may be at most at index 105, so that CRLF ends within the 107 bytes.
  const lastCr = V1_MAX_LENGTH - 2;
  let cr = -1;
  for (let i = V1_PREFIX.length; i < view.length && i <= lastCr; i++) {
    const byte = view[i]!;
    if (byte === CR) {
      cr = i;
      break;
    }
    if (byte < 0x20 || byte > 0x7e) return invalid(`v1 header has a non-printable byte 0x${hex(byte)} at offset ${i}`);
  }
  if (cr < 0) return view.length > lastCr ? invalid(`v1 header has no CRLF within ${V1_MAX_LENGTH} bytes`) : NEED_MORE;
  if (cr + 1 >= view.length) return NEED_MORE;
  if (view[cr + 1] !== LF) return invalid('v1 header has a CR not followed by LF');
  const length = cr + 2;
  const line = view.toString('latin1', V1_PREFIX.length, cr);
  const fields = line.split(' ');
  // UNKNOWN: "the receiver must ignore anything presented before the CRLF".
  if (fields[0] === 'UNKNOWN') return done({ version: 1, command: 'proxy', addresses: undefined, tlvs: [] }, length);
  if (fields[0] !== 'TCP4' && fields[0] !== 'TCP6') return invalid(`v1 protocol "${fields[0]}" is none of TCP4, TCP6, UNKNOWN`);
  if (fields.length !== 5) return invalid(`v1 ${fields[0]} line needs 4 single-space separated fields after it, got "${line}"`);
  const [proto, src, dst, sport, dport] = fields as [string, string, string, string, string];
  const family = proto === 'TCP4' ? 'IPv4' : 'IPv6';
  for (const address of [src, dst]) {
    // A zone id (fe80::1%eth0) names an interface of the sender's host; it means nothing here.
    const ok = family === 'IPv4' ? isIPv4(address) : isIPv6(address) && !address.includes('%');
    if (!ok) return invalid(`v1 ${proto} address "${address}" is not an ${family} address`);
  }
  const sourcePort = port(sport);
  const destinationPort = port(dport);
  if (sourcePort === undefined || destinationPort === undefined) return invalid(`v1 ports "${sport}" and "${dport}" must be decimal numbers from 0 to 65535`);
  return done({ version: 1, command: 'proxy', addresses: { family, sourceAddress: src, sourcePort, destinationAddress: dst, destinationPort }, tlvs: [] }, length);
}

function port(text: string): number | undefined {
  if (!/^\d{1,5}$/.test(text)) return undefined;
  const n = Number(text);
  return n <= 0xffff ? n : undefined;
}

function parseV2(view: Buffer, maxBytes: number): ProxyParseResult {
  const version = view[12]! >> 4;
  const command = view[12]! & 0x0f;
  if (version !== 2) return invalid(`v2 version nibble is ${version}, expected 2`);
  if (command > 1) return invalid(`v2 command ${command} is neither LOCAL (0) nor PROXY (1)`);
  const family = view[13]! >> 4;
  const transport = view[13]! & 0x0f;
  // The spec: other values "must be rejected as invalid by receivers".
  if (family > 3 || transport > 2) return invalid(`v2 family/transport byte 0x${hex(view[13]!)} is not defined by the spec`);
  const length = V2_FIXED_LENGTH + view.readUInt16BE(14);
  if (length > maxBytes) return invalid(`v2 header declares ${length} bytes, more than maxHeaderBytes (${maxBytes})`);
  if (view.length < length) return { kind: 'need-more', atLeast: length };
  // LOCAL: "the receiver must ... use the real connection endpoints and discard the protocol block".
  if (command === 0) return done({ version: 2, command: 'local', addresses: undefined, tlvs: [] }, length);
  const addressLength = ADDRESS_LENGTH[family as 0 | 1 | 2 | 3];
  if (length - V2_FIXED_LENGTH < addressLength) {
    return invalid(`v2 ${FAMILY_NAMES[family as 0 | 1 | 2 | 3]} address block needs ${addressLength} bytes, the header declares ${length - V2_FIXED_LENGTH}`);
  }
  const split = splitTlvs(view.subarray(V2_FIXED_LENGTH + addressLength, length));
  if ('error' in split) return invalid(`v2 TLVs: ${split.error}`);
  const crcError = checkCrc(view.subarray(0, length), split.tlvs);
  if (crcError) return invalid(crcError);
  const addresses = transport === STREAM && family === 1 ? v4Addresses(view) : transport === STREAM && family === 2 ? v6Addresses(view) : undefined;
  return done({ version: 2, command: 'proxy', addresses, tlvs: split.tlvs }, length);
}

/** A CRC32C TLV, when present, must match the header computed with its own value zeroed. */
function checkCrc(header: Buffer, tlvs: readonly Tlv[]): string | undefined {
  const crc = tlvs.find((t) => t.type === PP2_TYPE_CRC32C);
  if (!crc) return undefined;
  if (crc.value.length !== 4) return `v2 CRC32C TLV has ${crc.value.length} bytes, expected 4`;
  const copy = Buffer.from(header);
  const at = crc.value.byteOffset - header.byteOffset;
  copy.fill(0, at, at + 4);
  const expected = crc32c(copy);
  const got = crc.value.readUInt32BE(0);
  return got === expected ? undefined : `v2 CRC32C is 0x${got.toString(16)}, the header's checksum is 0x${expected.toString(16)}`;
}

function v4Addresses(view: Buffer): ProxyAddresses {
  const ip = (at: number): string => `${view[at]}.${view[at + 1]}.${view[at + 2]}.${view[at + 3]}`;
  return { family: 'IPv4', sourceAddress: ip(16), destinationAddress: ip(20), sourcePort: view.readUInt16BE(24), destinationPort: view.readUInt16BE(26) };
}

function v6Addresses(view: Buffer): ProxyAddresses {
  return { family: 'IPv6', sourceAddress: ipv6(view, 16), destinationAddress: ipv6(view, 32), sourcePort: view.readUInt16BE(48), destinationPort: view.readUInt16BE(50) };
}

/** 16 bytes as the text Node itself gives addresses in (compressed; `::ffff:a.b.c.d` for mapped IPv4). */
function ipv6(view: Buffer, at: number): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(view.readUInt16BE(at + i).toString(16));
  return new SocketAddress({ address: groups.join(':'), family: 'ipv6' }).address;
}

function done(header: ProxyHeader, length: number): ProxyParseResult {
  return { kind: 'done', header, length };
}

function invalid(detail: string): ProxyParseResult {
  return { kind: 'reject', reason: 'invalid', detail };
}

function hex(byte: number): string {
  return byte.toString(16).padStart(2, '0');
}

/** Says what arrived instead of a header, so an operator sees "a plain MQTT client" rather than hex. */
function describeForeign(view: Buffer): string {
  const first = view[0]!;
  if (first === 0x10) return 'the connection starts with an MQTT CONNECT, not a PROXY header (a client connecting directly, not through the load balancer?)';
  if (first === 0x16) return 'the connection starts with a TLS handshake, not a PROXY header (is the load balancer sending PROXY? is proxy-in listed before tls?)';
  return `the connection starts with 0x${view.subarray(0, 8).toString('hex')}, not a PROXY v1 or v2 signature`;
}
