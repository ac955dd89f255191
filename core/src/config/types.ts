import type { BackendDefinition } from '../backend/backend-pool.ts';
import type { HealthCheckSettings } from '../backend/health-checker.ts';
import type { HostPort } from '../net/address.ts';
import type { WebSocketListenerOptions } from '../websocket/websocket-handshake.ts';
import type { AdminConfig } from './admin-config.ts';

/**
 * Which clients a chain entry applies to: all, only those with a session the broker keeps after
 * they disconnect (`persistent`), or only those without one (`clean`).
 */
export type ChainCondition = 'always' | 'persistent' | 'clean';
export const CHAIN_CONDITIONS: readonly ChainCondition[] = ['always', 'persistent', 'clean'];

/** One entry of an ordered plugin chain: the plugin (by name, path or package), its options and condition. */
export interface ChainEntry {
  readonly use: string;
  readonly options: Readonly<Record<string, unknown>>;
  /** Defaults to `always`. */
  readonly when?: ChainCondition;
}

/** The validated, normalized configuration the rest of Tether reads. Durations are milliseconds. */
export interface ListenerConfig {
  readonly name: string;
  readonly address: HostPort;
  readonly transports: readonly ChainEntry[];
  /** Set for a WebSocket listener (MQTT over WebSocket, RFC 6455 with the `mqtt` subprotocol). */
  readonly websocket?: WebSocketListenerOptions | undefined;
}

export interface TetherConfig {
  /** The plain listener's address (`listen`), if any. */
  readonly listen: HostPort | undefined;
  /** Every listener; the plain `listen` address, when set, is the one named "main". */
  readonly listeners: readonly ListenerConfig[];
  /** The admin API, when `admin.listen` is set. */
  readonly admin: AdminConfig | undefined;
  /** Prometheus metrics: on unless `enabled` is false; `listen` is their own read-only listener, if any. */
  readonly metrics: { readonly enabled: boolean; readonly listen: HostPort | undefined };
  /** The static backends (the `static` source). */
  readonly backends: readonly BackendDefinition[];
  /** Backend providers (discovery plugins), in order: a name two sources give goes to the first. */
  readonly providers: readonly ChainEntry[];
  readonly key: readonly ChainEntry[];
  readonly select: readonly ChainEntry[];
  readonly sinks: readonly ChainEntry[];
  /** Extra plugin modules to load (paths relative to the config file, or package names). */
  readonly plugins: readonly string[];
  readonly sniff: { readonly maxBytes: number; readonly timeoutMs: number; readonly strict: boolean };
  readonly timeouts: { readonly connectMs: number; readonly clientMs: number; readonly serverMs: number };
  readonly retries: number;
  readonly embedded: { readonly brokers: number };
  readonly healthCheck: HealthCheckSettings;
  readonly log: { readonly level: string };
  /** Worker processes (1: no cluster, everything in this process); `auto` is resolved to the CPU count. */
  readonly workers: number;
  readonly cluster: { readonly scheduling: 'rr' | 'os' };
  /** Directory relative paths in the config resolve against (the config file's, else cwd). */
  readonly baseDir: string;
}
