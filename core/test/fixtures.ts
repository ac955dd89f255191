// Small builders shared by the core unit tests. Real core objects where they exist (createConnInfo,
// createLogger); plain objects only where the contract is an interface (Backend).
import type { IConnectPacket } from 'mqtt-packet';
import { createLogger, type Logger } from '../src/logger.ts';
import { createConnInfo, factsOf } from '../src/pipeline/conn-info.ts';
import type { Backend, ConnInfo } from '../src/plugin.ts';

export function connect(fields: Partial<IConnectPacket> = {}): IConnectPacket {
  return { cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, keepalive: 60, clientId: 'c1', ...fields } as IConnectPacket;
}

export function connInfo(fields: Partial<IConnectPacket> = {}, key?: string): ConnInfo {
  const conn = createConnInfo(1, factsOf({ remoteAddress: '127.0.0.1', remotePort: 50000, remoteFamily: 'IPv4', localAddress: '127.0.0.1', localPort: 1883 }, 'test'), connect(fields));
  conn.key = key;
  return conn;
}

export function backend(id: string, extra: Partial<Backend> = {}): Backend {
  return { id, host: '127.0.0.1', port: 1, weight: 1, state: 'ready', sendProxy: 'none', maxconn: 0, activeConnections: 0, ...extra };
}

/** A logger whose JSON lines are collected, to assert on what was logged. */
export function capturingLogger(level = 'debug'): { log: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const log = createLogger(level, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
  return { log, lines };
}
