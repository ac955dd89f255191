/**
 * Helpers for testing plugins (`@tether/core/testing`): well-formed ConnInfo and Backend values,
 * so a test states only the fields it is about and keeps compiling when the contract grows.
 */
import type { IConnectPacket } from 'mqtt-packet';
import { createConnInfo, factsOf } from './pipeline/conn-info.ts';
import type { Backend, ConnFacts, ConnInfo } from './plugin.ts';

export interface TestConnOptions {
  /** CONNECT fields; defaults to an MQTT 3.1.1 clean-session CONNECT with client id `test-client`. */
  readonly connect?: Partial<IConnectPacket>;
  /** Address and TLS facts, as transports would have left them. */
  readonly facts?: Partial<ConnFacts>;
  /** ConnInfo fields to force (key, keySource, dryRun, id). */
  readonly key?: string;
  readonly keySource?: string;
  readonly dryRun?: boolean;
  readonly id?: number;
}

export function testConn(options: TestConnOptions = {}): ConnInfo {
  const packet = { cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, keepalive: 60, clientId: 'test-client', ...options.connect } as IConnectPacket;
  const facts: ConnFacts = {
    ...factsOf({ remoteAddress: '127.0.0.1', remotePort: 40000, remoteFamily: 'IPv4', localAddress: '127.0.0.1', localPort: 1883 }, 'test'),
    ...options.facts,
  };
  const conn = createConnInfo(options.id ?? 1, facts, packet, options.dryRun ?? false);
  conn.key = options.key;
  conn.keySource = options.keySource ?? (options.key !== undefined ? 'test' : undefined);
  return conn;
}

export function testBackend(id: string, overrides: Partial<Backend> = {}): Backend {
  return { id, host: '127.0.0.1', port: 1883, weight: 1, state: 'ready', sendProxy: 'none', maxconn: 0, activeConnections: 0, ...overrides };
}

export { createPeerNetwork } from './cluster/in-memory-peers.ts';
export type { TestPeer, TestPeerNetwork } from './cluster/in-memory-peers.ts';
