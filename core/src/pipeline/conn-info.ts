/** The address facts of a connection; a net.Socket has them all. */
export interface Endpoints {
  readonly remoteAddress?: string | undefined;
  readonly remotePort?: number | undefined;
  readonly remoteFamily?: string | undefined;
  readonly localAddress?: string | undefined;
  readonly localPort?: number | undefined;
}
import type { IConnectPacket } from 'mqtt-packet';
import type { ConnFacts, ConnInfo } from '../plugin.ts';

/** The facts of a freshly accepted socket, before any transport has run. */
export function factsOf(socket: Endpoints, listener: string): ConnFacts {
  return {
    remoteAddress: socket.remoteAddress ?? '',
    remotePort: socket.remotePort ?? 0,
    localAddress: socket.localAddress ?? '',
    localPort: socket.localPort ?? 0,
    family: socket.remoteFamily === 'IPv6' ? 'IPv6' : 'IPv4',
    proxied: false,
    tls: undefined,
    listener,
    attributes: new Map(),
  };
}

/** Builds the per-connection facts plugins see, once the CONNECT has been read. */
export function createConnInfo(id: number, facts: ConnFacts, packet: IConnectPacket, dryRun = false): ConnInfo {
  const protocolVersion = (packet.protocolVersion ?? 4) as 3 | 4 | 5;
  return {
    id,
    remoteAddress: facts.remoteAddress,
    remotePort: facts.remotePort,
    localAddress: facts.localAddress,
    localPort: facts.localPort,
    family: facts.family,
    proxied: facts.proxied,
    tls: facts.tls,
    listener: facts.listener,
    connect: packet,
    protocolVersion,
    persistentSession: isPersistent(packet, protocolVersion),
    key: undefined,
    keySource: undefined,
    dryRun,
    attributes: facts.attributes,
  };
}

/**
 * Whether the broker will keep state for this client after it disconnects: MQTT 3.1.x with clean
 * session off, or MQTT 5 with a session expiry interval above zero (clean start only decides
 * whether an old session is resumed now, not whether one outlives this connection).
 */
export function isPersistent(packet: IConnectPacket, protocolVersion: 3 | 4 | 5): boolean {
  if (protocolVersion === 5) return (packet.properties?.sessionExpiryInterval ?? 0) > 0;
  return packet.clean === false;
}
