// Decoding PROXY headers with independent code, never ours: the proxy-protocol-js parser for the
// header structure, and the WHATWG URL parser (built into Node) to canonicalize IPv6 text.
import {
  AddressFamilyType, Command, IPv4ProxyAddress, IPv6ProxyAddress, ProxyProtocolIdentifier, ProxyProtocolVersion,
  TransportProtocol, V1ProxyProtocol, V2ProxyProtocol,
} from 'proxy-protocol-js';

export interface Decoded {
  readonly version: 1 | 2;
  /** 'TCP4' / 'TCP6' / 'UNKNOWN' (v1 names; v2 is mapped to them). */
  readonly proto: 'TCP4' | 'TCP6' | 'UNKNOWN';
  readonly src?: string;
  readonly dst?: string;
  readonly srcPort?: number;
  readonly dstPort?: number;
  /** Bytes after the header: the client's own bytes. */
  readonly rest: Buffer;
}

/** Canonical text of an IPv6 address (lower case, zeros compressed, mapped IPv4 in hex). */
export function canonicalV6(address: string): string {
  // A zone id (fe80::1%eth0) is not an address a receiver's inet_pton accepts: keep it visible so
  // the comparison fails with a readable diff instead of a URL parse error.
  if (address.includes('%')) return address;
  return new URL(`http://[${address}]/`).hostname.slice(1, -1);
}

function v6FromBytes(bytes: readonly number[]): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16));
  return canonicalV6(groups.join(':'));
}

export function decode(header: Buffer): Decoded {
  const version = ProxyProtocolIdentifier.identify(new Uint8Array(header));
  if (version === ProxyProtocolVersion.V1) {
    const text = header.toString('latin1');
    // proxy-protocol-js only parses the long form; the spec's short "PROXY UNKNOWN\r\n" is checked by hand.
    if (text.startsWith('PROXY UNKNOWN\r\n')) return { version: 1, proto: 'UNKNOWN', rest: header.subarray('PROXY UNKNOWN\r\n'.length) };
    const parsed = V1ProxyProtocol.parse(text);
    const proto = parsed.inetProtocol as 'TCP4' | 'TCP6' | 'UNKNOWN';
    const canon = (a: string): string => (proto === 'TCP6' ? canonicalV6(a) : a);
    return {
      version: 1, proto, src: canon(parsed.source.ipAddress), dst: canon(parsed.destination.ipAddress),
      srcPort: parsed.source.port, dstPort: parsed.destination.port, rest: Buffer.from(parsed.data ?? '', 'latin1'),
    };
  }
  if (version === ProxyProtocolVersion.V2) {
    const parsed = V2ProxyProtocol.parse(new Uint8Array(header));
    if (parsed.command !== Command.PROXY) throw new Error(`v2 command ${parsed.command}, expected PROXY`);
    const rest = Buffer.from(parsed.data ?? new Uint8Array());
    if (parsed.addressFamilyType === AddressFamilyType.UNSPEC) return { version: 2, proto: 'UNKNOWN', rest };
    if (parsed.transportProtocol !== TransportProtocol.STREAM) throw new Error(`v2 transport ${parsed.transportProtocol}, expected STREAM`);
    const a = parsed.proxyAddress;
    if (parsed.addressFamilyType === AddressFamilyType.INET && a instanceof IPv4ProxyAddress) {
      return {
        version: 2, proto: 'TCP4', src: a.sourceAddress.address.join('.'), dst: a.destinationAddress.address.join('.'),
        srcPort: a.sourcePort, dstPort: a.destinationPort, rest,
      };
    }
    if (parsed.addressFamilyType === AddressFamilyType.INET6 && a instanceof IPv6ProxyAddress) {
      return {
        version: 2, proto: 'TCP6', src: v6FromBytes(a.sourceAddress.address), dst: v6FromBytes(a.destinationAddress.address),
        srcPort: a.sourcePort, dstPort: a.destinationPort, rest,
      };
    }
    throw new Error(`unexpected v2 address family ${parsed.addressFamilyType}`);
  }
  throw new Error(`not a PROXY header: ${header.subarray(0, 16).toString('hex')}`);
}
