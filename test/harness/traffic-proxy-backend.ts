import { Aedes } from 'aedes';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import {
  Command,
  IPv4ProxyAddress,
  IPv6ProxyAddress,
  ProxyProtocolIdentifier,
  ProxyProtocolVersion,
  TransportProtocol,
  V1ProxyProtocol,
  V2ProxyProtocol,
} from 'proxy-protocol-js';
import { withTimeout } from './traffic-wait.ts';

/** A PROXY protocol header as an independent decoder (proxy-protocol-js) read it. */
export interface DecodedProxyHeader {
  readonly version: 1 | 2;
  /** v1: TCP4 / TCP6; v2: the address family byte's meaning (INET / INET6). */
  readonly family: 'IPv4' | 'IPv6';
  readonly sourceAddress: string;
  readonly sourcePort: number;
  readonly destinationAddress: string;
  readonly destinationPort: number;
  /** v2 only: the command (PROXY) and transport (STREAM) nibbles. */
  readonly command?: string;
  readonly transport?: string;
}

/** A broker that requires a PROXY header before MQTT, like a broker configured for it behind HAProxy. */
export interface ProxyAedesBackend {
  readonly host: string;
  readonly port: number;
  readonly aedes: Aedes;
  /** Headers decoded so far, one per accepted connection, in arrival order. */
  readonly headers: DecodedProxyHeader[];
  /** Connections refused because they did not start with a valid PROXY header. */
  readonly refusals: string[];
  /** The next decoded header; call before connecting, await after. */
  nextHeader(ms?: number): Promise<DecodedProxyHeader>;
  close(): Promise<void>;
}

const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const V1_PREFIX = Buffer.from('PROXY ', 'latin1');
/** The longest v1 line the spec allows, CRLF included. */
const V1_MAX = 107;

/**
 * Where the header ends, so exactly the bytes after it go to the broker: a number of bytes,
 * 'more' when what arrived so far is a valid beginning, or 'invalid'. proxy-protocol-js parses a
 * header but does not say how long it was (its v2 parser sizes the address block by family and
 * ignores the length field), so the framing is done here, from the spec.
 */
function headerLength(buf: Buffer): number | 'more' | 'invalid' {
  const v2Head = buf.subarray(0, V2_SIGNATURE.length);
  if (V2_SIGNATURE.subarray(0, v2Head.length).equals(v2Head)) {
    if (buf.length < 16) return 'more';
    return 16 + buf.readUInt16BE(14);
  }
  const v1Head = buf.subarray(0, V1_PREFIX.length);
  if (V1_PREFIX.subarray(0, v1Head.length).equals(v1Head)) {
    const end = buf.indexOf('\r\n', 0, 'latin1');
    if (end >= 0 && end + 2 <= V1_MAX) return end + 2;
    return buf.length < V1_MAX ? 'more' : 'invalid';
  }
  return 'invalid';
}

function decode(header: Buffer): DecodedProxyHeader {
  const version = ProxyProtocolIdentifier.identify(new Uint8Array(header));
  if (version === ProxyProtocolVersion.V1) {
    const p = V1ProxyProtocol.parse(header.toString('latin1'));
    return {
      version: 1,
      family: String(p.inetProtocol) === 'TCP6' ? 'IPv6' : 'IPv4',
      sourceAddress: p.source.ipAddress,
      sourcePort: p.source.port,
      destinationAddress: p.destination.ipAddress,
      destinationPort: p.destination.port,
    };
  }
  if (version === ProxyProtocolVersion.V2) {
    const p = V2ProxyProtocol.parse(new Uint8Array(header));
    const a = p.proxyAddress;
    const common = { version: 2 as const, command: Command[p.command], transport: TransportProtocol[p.transportProtocol] };
    if (a instanceof IPv4ProxyAddress) {
      return { ...common, family: 'IPv4', sourceAddress: a.sourceAddress.address.join('.'), sourcePort: a.sourcePort, destinationAddress: a.destinationAddress.address.join('.'), destinationPort: a.destinationPort };
    }
    if (a instanceof IPv6ProxyAddress) {
      return { ...common, family: 'IPv6', sourceAddress: ipv6Text(a.sourceAddress.address), sourcePort: a.sourcePort, destinationAddress: ipv6Text(a.destinationAddress.address), destinationPort: a.destinationPort };
    }
    throw new Error(`v2 header with an address family this test does not expect: ${p.addressFamilyType}`);
  }
  throw new Error('not a PROXY protocol header');
}

/** 16 bytes as eight hex groups (uncompressed); compare with canonicalIp. */
function ipv6Text(bytes: readonly number[]): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0)).toString(16));
  return groups.join(':');
}

/** One spelling per address (`0:0:0:0:0:0:0:1` and `::1` are equal), via the WHATWG URL parser. */
export function canonicalIp(address: string): string {
  return address.includes(':') ? new URL(`http://[${address}]/`).hostname.slice(1, -1) : address;
}

/**
 * A raw TCP server that reads and decodes the PROXY header itself and then hands the socket, with
 * the bytes that followed the header pushed back (unshift), to a real aedes broker. Binds `host`
 * port 0.
 */
export async function startProxyAedesBackend(host: string): Promise<ProxyAedesBackend> {
  const aedes = await Aedes.createBroker();
  const headers: DecodedProxyHeader[] = [];
  const refusals: string[] = [];
  const waiters = new Set<(h: DecodedProxyHeader) => void>();
  const sockets = new Set<Socket>();

  const server = createServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    let buf = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      buf = Buffer.concat([buf, chunk]);
      const length = headerLength(buf);
      // A v2 header announces its length up front; wait for all of it (its address block too).
      if (length === 'more' || (typeof length === 'number' && buf.length < length)) return;
      // Stop reading before the broker takes over, so no byte is consumed in between.
      socket.off('data', onData);
      socket.pause();
      if (length === 'invalid') {
        refusals.push(buf.subarray(0, 32).toString('hex'));
        return void socket.destroy();
      }
      let header: DecodedProxyHeader;
      try {
        header = decode(buf.subarray(0, length));
      } catch (err) {
        refusals.push(`${(err as Error).message}: ${buf.subarray(0, length).toString('hex')}`);
        return void socket.destroy();
      }
      headers.push(header);
      for (const w of [...waiters]) w(header);
      const rest = buf.subarray(length);
      if (rest.length > 0) socket.unshift(rest);
      aedes.handle(socket);
    };
    socket.on('data', onData);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port: 0 }, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    host,
    port,
    aedes,
    headers,
    refusals,
    nextHeader: (ms = 10_000) => {
      let waiter: ((h: DecodedProxyHeader) => void) | undefined;
      const next = new Promise<DecodedProxyHeader>((resolve) => {
        waiter = (h) => resolve(h);
        waiters.add(waiter);
      });
      return withTimeout(next, ms, `a PROXY header on [${host}]:${port}`).finally(() => waiters.delete(waiter!));
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => aedes.close(() => resolve()));
      }),
  };
}
