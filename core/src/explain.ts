import type { BackendPool } from './backend/backend-pool.ts';
import { describe } from './errors.ts';
import { createConnInfo, factsOf, type Endpoints } from './pipeline/conn-info.ts';
import { identify } from './pipeline/identify.ts';
import type { StrategyChain } from './pipeline/strategy-chain.ts';
import type { Extractor } from './plugin.ts';
import type { Named } from './plugins/plugin-loader.ts';
import { inspectConnect } from './sniff/connect-sniffer.ts';

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
}

export interface ExplainDeps {
  readonly maxBytes: number;
  readonly strict?: boolean;
  readonly extractors: readonly Named<Extractor>[];
  readonly strategies: StrategyChain;
  readonly pool: BackendPool;
}

const NOWHERE: Endpoints = { remoteAddress: '127.0.0.1', remotePort: 0, remoteFamily: 'IPv4', localAddress: '127.0.0.1', localPort: 0 };

/**
 * What the pipeline would do with one first packet, without connecting anywhere: the sniff
 * verdict, the CONNECT's fields, the key, and the backend the strategy chain picks right now.
 */
export async function explain(bytes: Buffer, deps: ExplainDeps): Promise<ExplainResult> {
  const result = inspectConnect(bytes, deps.maxBytes, deps.strict ?? true);
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
    const choice = await deps.strategies.select(conn, deps.pool.available());
    return { ...base, key: conn.key ?? null, keySource: conn.keySource ?? null, backend: choice?.backend.id ?? null, strategy: choice?.strategy ?? null };
  } catch (err) {
    return { ...base, key: conn.key ?? null, error: describe(err) };
  }
}
