import type { BackendDefinition } from '../backend/backend-pool.ts';
import type { HostPort } from '../net/address.ts';

/** One entry of an ordered plugin chain: the plugin (by name, path or package) and its options. */
export interface ChainEntry {
  readonly use: string;
  readonly options: Readonly<Record<string, unknown>>;
}

/** The validated, normalized configuration the rest of Tether reads. Durations are milliseconds. */
export interface TetherConfig {
  readonly listen: HostPort;
  readonly admin: HostPort | undefined;
  readonly backends: readonly BackendDefinition[];
  readonly key: readonly ChainEntry[];
  readonly select: readonly ChainEntry[];
  readonly sinks: readonly ChainEntry[];
  /** Extra plugin modules to load (paths relative to the config file, or package names). */
  readonly plugins: readonly string[];
  readonly sniff: { readonly maxBytes: number; readonly timeoutMs: number };
  readonly timeouts: { readonly connectMs: number; readonly clientMs: number; readonly serverMs: number };
  readonly retries: number;
  readonly embedded: { readonly brokers: number };
  readonly log: { readonly level: string };
  /** Directory relative paths in the config resolve against (the config file's, else cwd). */
  readonly baseDir: string;
}
