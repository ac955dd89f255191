import type { BackendSpec } from './backends.ts';
import { DEFAULT_SCENARIOS, SCENARIOS, type Scenario } from './metrics.ts';

export const BASELINES = ['direct', 'haproxy', 'node'] as const;
export type Baseline = (typeof BASELINES)[number];

/**
 * Limits. Idle hold: a process may hold 20,000 file descriptors here and the balancer uses two
 * per spliced connection, so 9,000 held connections leave room for everything else.
 */
export const LIMITS = {
  idleConnections: 9_000,
  connections: 200_000,
  concurrency: 1_000,
  rounds: 50,
  durationMs: 120_000,
  backends: 16,
  workers: 64,
} as const;

export interface NetworkBenchOptions {
  /** Tether config files, one target each, run in turn; none: one Tether with the defaults. */
  readonly configs?: readonly string[];
  /** Worker counts to run each Tether target with (`workers`), side by side; default [1]. */
  readonly workers?: readonly number[];
  /**
   * Run each Tether target with metrics on (true) and/or off (false, `metrics.enabled: false`),
   * side by side (targets `tether` and `tether:nometrics`); default [true].
   */
  readonly metrics?: readonly boolean[];
  /** Log level of the Tether targets; default warn (no line per connection, like HAProxy without `option tcplog`). */
  readonly logLevel?: string;
  /**
   * Also run every Tether target with its stick table on a Redis started for the run (targets
   * `…:redis`), interleaved with the memory store, and compare them.
   */
  readonly redis?: boolean;
  /** How to run the tether CLI: [node, path/to/cli/bin/tether.js]. */
  readonly tetherCommand: readonly string[];
  readonly backend?: BackendSpec;
  readonly rounds?: number;
  readonly scenarios?: readonly Scenario[];
  /** Clients of the connect storm, and persistent clients of the reconnect storm. */
  readonly connections?: number;
  /** Connections of the idle hold (K). */
  readonly idleConnections?: number;
  /** Clients at a time in the storms; connections of ping-pong and publish. */
  readonly concurrency?: number;
  /** Length of each ping-pong and publish phase. */
  readonly durationMs?: number;
  /** Baselines; by default direct, and haproxy when it is installed. */
  readonly baselines?: readonly Baseline[];
  readonly qos1Window?: number;
  readonly payloadBytes?: number;
  /** One line per phase as it starts. */
  readonly onProgress?: (line: string) => void;
  /** Aborting stops every process at once and makes the run reject. */
  readonly signal?: AbortSignal;
}

export type ResolvedOptions = Required<Omit<NetworkBenchOptions, 'onProgress' | 'signal' | 'baselines'>> & {
  readonly baselines: readonly Baseline[] | undefined;
};

export const DEFAULTS = {
  backend: { kind: 'responder', count: 2 } as BackendSpec,
  rounds: 3,
  connections: 2_000,
  idleConnections: 5_000,
  concurrency: 16,
  durationMs: 2_000,
  qos1Window: 16,
  payloadBytes: 64,
};

/** Fills in defaults and checks every bound; throws an Error naming the option. */
export function resolveOptions(options: NetworkBenchOptions): ResolvedOptions {
  const resolved: ResolvedOptions = {
    configs: options.configs ?? [],
    workers: options.workers ?? [1],
    metrics: options.metrics ?? [true],
    logLevel: options.logLevel ?? 'warn',
    redis: options.redis ?? false,
    tetherCommand: options.tetherCommand,
    backend: options.backend ?? DEFAULTS.backend,
    rounds: options.rounds ?? DEFAULTS.rounds,
    scenarios: options.scenarios ?? DEFAULT_SCENARIOS,
    connections: options.connections ?? DEFAULTS.connections,
    idleConnections: options.idleConnections ?? DEFAULTS.idleConnections,
    concurrency: options.concurrency ?? DEFAULTS.concurrency,
    durationMs: options.durationMs ?? DEFAULTS.durationMs,
    baselines: options.baselines,
    qos1Window: options.qos1Window ?? DEFAULTS.qos1Window,
    payloadBytes: options.payloadBytes ?? DEFAULTS.payloadBytes,
  };
  const whole = (name: string, value: number, min: number, max: number): void => {
    if (!Number.isInteger(value) || value < min || value > max) throw new Error(`${name} must be a whole number from ${min} to ${max}, got ${value}`);
  };
  whole('rounds', resolved.rounds, 1, LIMITS.rounds);
  if (resolved.workers.length === 0) throw new Error('give at least one worker count');
  if (resolved.metrics.length === 0) throw new Error('give metrics on, off or both');
  for (const n of resolved.workers) whole('workers', n, 1, LIMITS.workers);
  whole('connections', resolved.connections, 1, LIMITS.connections);
  whole('idle connections (--clients)', resolved.idleConnections, 1, LIMITS.idleConnections);
  whole('concurrency', resolved.concurrency, 1, LIMITS.concurrency);
  whole('duration (ms)', resolved.durationMs, 100, LIMITS.durationMs);
  whole('QoS 1 window', resolved.qos1Window, 1, 512);
  whole('payload bytes', resolved.payloadBytes, 0, 65_536);
  if (resolved.backend.kind === 'external') {
    if (resolved.backend.addresses.length === 0 || resolved.backend.addresses.length > LIMITS.backends) throw new Error(`give 1 to ${LIMITS.backends} backend addresses`);
  } else whole('backend count', resolved.backend.count, 1, LIMITS.backends);
  if (resolved.scenarios.length === 0) throw new Error('no scenario to run');
  for (const s of resolved.scenarios) if (!SCENARIOS.includes(s)) throw new Error(`unknown scenario "${s}" (scenarios: ${SCENARIOS.join(', ')})`);
  for (const b of resolved.baselines ?? []) if (!BASELINES.includes(b)) throw new Error(`unknown baseline "${b}" (baselines: ${BASELINES.join(', ')})`);
  return resolved;
}
