import type { BackendPool } from './backend/backend-pool.ts';
import { describe } from './errors.ts';
import { createConnInfo, factsOf, type Endpoints } from './pipeline/conn-info.ts';
import { identify } from './pipeline/identify.ts';
import type { StrategyChain } from './pipeline/strategy-chain.ts';
import type { Extractor } from './plugin.ts';
import type { Named } from './plugins/plugin-loader.ts';
import { inspectConnect, type SniffResult } from './sniff/connect-sniffer.ts';
import { OpeningReader } from './websocket/opening-reader.ts';
import { WEBSOCKET_DEFAULTS, type WebSocketListenerOptions } from './websocket/websocket-handshake.ts';

export interface ExplainResult {
  readonly valid: boolean;
  readonly error?: string;
  readonly bytes: number;
  readonly protocolName?: string;
  readonly protocolVersion?: number;
  readonly clientId?: string;
  readonly username?: string;
  readonly cleanSession?: boolean;
  readonly keepalive?: number;
  readonly sessionExpiryInterval?: number;
  readonly persistentSession?: boolean;
  readonly key?: string | null;
  readonly keySource?: string | null;
  readonly backend?: string | null;
  readonly strategy?: string | null;
  /** For the bytes of a WebSocket opening: what the request asked for, and how the chosen backend would be reached. */
  readonly websocket?: { readonly path: string; readonly protocol: string; readonly mode?: 'bridge' | 'pass-through' };
}

export interface ExplainDeps {
  readonly maxBytes: number;
  readonly strict?: boolean;
  readonly extractors: readonly Named<Extractor>[];
  readonly strategies: StrategyChain;
  readonly pool: BackendPool;
  /** A WebSocket listener's options, to read an opening with (defaults: path /mqtt, mqtt and mqttv3.1). */
  readonly websocket?: WebSocketListenerOptions | undefined;
}

const NOWHERE: Endpoints = { remoteAddress: '127.0.0.1', remotePort: 0, remoteFamily: 'IPv4', localAddress: '127.0.0.1', localPort: 0 };

/**
 * What the pipeline would do with one first packet, without connecting anywhere: the sniff
 * verdict, the CONNECT's fields, the key, and the backend the strategy chain picks right now.
 */
export async function explain(bytes: Buffer, deps: ExplainDeps): Promise<ExplainResult> {
  const opening = looksLikeHttp(bytes) ? readOpening(bytes, deps) : undefined;
  if (opening !== undefined && 'error' in opening) return { valid: false, bytes: bytes.length, error: opening.error };
  const result: SniffResult = opening?.sniffed ?? inspectConnect(bytes, deps.maxBytes, deps.strict ?? true);
  if (result.kind === 'need-more') {
    return { valid: false, bytes: bytes.length, error: `incomplete packet: ${bytes.length} bytes do not hold a whole CONNECT` };
  }
  if (result.kind === 'reject') return { valid: false, bytes: bytes.length, error: result.error.message };
  const packet = result.packet;
  const conn = createConnInfo(0, factsOf(NOWHERE, 'explain'), packet, true);
  const base = {
    valid: true,
    bytes: bytes.length,
    protocolName: packet.protocolId,
    protocolVersion: conn.protocolVersion,
    clientId: packet.clientId,
    username: packet.username,
    cleanSession: packet.clean,
    keepalive: packet.keepalive,
    sessionExpiryInterval: packet.properties?.sessionExpiryInterval,
    persistentSession: conn.persistentSession,
  };
  try {
    identify(conn, deps.extractors);
    // As in the pipeline: a plain MQTT client is never offered a broker's WebSocket endpoint.
    const offered = opening ? deps.pool.available() : deps.pool.available().filter((b) => b.websocketPath === undefined);
    const choice = await deps.strategies.select(conn, offered);
    const websocket = opening && { ...opening.websocket, ...(choice ? { mode: choice.backend.websocketPath === undefined ? 'bridge' as const : 'pass-through' as const } : {}) };
    return { ...base, key: conn.key ?? null, keySource: conn.keySource ?? null, backend: choice?.backend.id ?? null, strategy: choice?.strategy ?? null, ...(websocket ? { websocket } : {}) };
  } catch (err) {
    return { ...base, key: conn.key ?? null, error: describe(err) };
  }
}

/** An HTTP request line starts with an upper-case method and a space; an MQTT CONNECT starts with 0x10. */
function looksLikeHttp(bytes: Buffer): boolean {
  return /^[A-Z]{3,7} /.test(bytes.toString('latin1', 0, 8));
}

/** The CONNECT inside a WebSocket opening (request and frames), read as the WebSocket listener reads it. */
function readOpening(bytes: Buffer, deps: ExplainDeps): { sniffed: SniffResult; websocket: { path: string; protocol: string } } | { error: string } {
  const reader = new OpeningReader(deps.websocket ?? WEBSOCKET_DEFAULTS, deps.maxBytes, deps.strict ?? true);
  let result = reader.inspect(bytes);
  if (result.kind === 'upgrade') result = reader.inspect(bytes);
  switch (result.kind) {
    case 'upgrade':
    case 'need-more':
      return { error: reader.upgraded ? `incomplete WebSocket opening: the frames in ${bytes.length} bytes do not hold a whole CONNECT` : `incomplete WebSocket opening: no complete request head in ${bytes.length} bytes` };
    case 'reject':
      return { error: `WebSocket opening refused (${result.error.reason}): ${result.error.message}` };
    case 'done': {
      const { opening } = result;
      return {
        sniffed: { kind: 'done', packet: opening.packet, length: opening.mqtt.length },
        websocket: { path: opening.head.target.split('?', 1)[0]!, protocol: opening.upgrade.protocol },
      };
    }
  }
}
