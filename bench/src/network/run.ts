import { cpus, loadavg } from 'node:os';
import { startBackends, describeBackends, type Backends } from './backends.ts';
import { ChildRegistry } from './children.ts';
import { LoadGenerator } from './loadgen-process.ts';
import type { Scenario } from './metrics.ts';
import { resolveOptions, type Baseline, type NetworkBenchOptions, type ResolvedOptions } from './options.ts';
import { clockTicksPerSecond } from './proc-stat.ts';
import { runScenario, warmUp, type ScenarioResult } from './scenarios.ts';
import { summarize, type Summary } from './summary.ts';
import { haproxyInstalled, haproxyVersion, redisInstalled, startRedis, startTarget, storePairs, tetherTargets, type TargetSpec } from './targets.ts';

export interface RoundResult {
  readonly round: number;
  /** The order the targets ran in (rotated each round, so none is always first or last). */
  readonly order: readonly string[];
  readonly results: Record<string, Partial<Record<Scenario, ScenarioResult>>>;
}

export interface NetworkBenchResult extends Summary {
  readonly settings: {
    readonly rounds: number;
    readonly scenarios: readonly Scenario[];
    readonly connections: number;
    readonly idleConnections: number;
    readonly concurrency: number;
    readonly durationMs: number;
    readonly qos1Window: number;
    readonly payloadBytes: number;
    /** Worker counts the Tether targets ran with (absent in results of older versions). */
    readonly workers?: readonly number[];
    /** Metrics on (true) and/or off (false) for the Tether targets, and their log level (absent in older results). */
    readonly metrics?: readonly boolean[];
    readonly logLevel?: string;
    /** Whether Redis-store targets ran too. */
    readonly redis?: boolean;
  };
  readonly environment: { readonly node: string; readonly cpus: number; readonly loadavg: readonly number[]; readonly clockTicks: number; readonly haproxy?: string };
  readonly backends: { readonly kind: string; readonly description: string; readonly addresses: readonly string[] };
  readonly targets: readonly { readonly name: string; readonly kind: string; readonly config?: string; readonly workers?: number; readonly metrics?: false }[];
  readonly baselines: readonly Baseline[];
  readonly rounds: readonly RoundResult[];
  readonly notes: readonly string[];
  /** Every process the run started; all of them have exited when the run returns. */
  readonly processes: readonly { readonly role: string; readonly pid: number }[];
  readonly elapsedS: number;
}

/**
 * `tether bench network`: starts the backends and the load generator once, then for each round
 * runs every target (each Tether config, then the baselines; the order rotated every round) in a
 * process of its own through every scenario, stopping it before the next. Rounds interleave the
 * targets so that the machine's drift hits them all alike; results are medians over rounds.
 */
export async function runNetworkBench(input: NetworkBenchOptions): Promise<NetworkBenchResult> {
  const started = performance.now();
  const options = resolveOptions(input);
  const notes: string[] = [];
  const baselines = chooseBaselines(options, notes);
  if (options.redis && !redisInstalled()) throw new Error('--redis needs redis-server installed (apt-get install redis-server)');
  // WebSocket scenarios over brokers with their own WebSocket endpoints: pass-through beside the bridge.
  const passThrough = options.scenarios.some((s) => s.startsWith('ws-')) && options.backend.kind === 'embedded';
  const targets: TargetSpec[] = [
    ...tetherTargets(options.configs, options.workers, options.metrics, options.redis ? ['memory', 'redis'] : ['memory']),
    ...(passThrough ? [{ kind: 'tether', name: 'tether:ws-pass', passThrough: true } as TargetSpec] : []),
    ...baselines.map((b) => ({ kind: b, name: b }) as TargetSpec),
  ];
  noteCoarseReadings(options, notes);
  const progress = input.onProgress ?? (() => {});
  const registry = new ChildRegistry();
  const onAbort = (): void => void registry.stopAll();
  input.signal?.addEventListener('abort', onAbort, { once: true });
  const rounds: RoundResult[] = [];
  let backends: Backends | undefined;
  try {
    input.signal?.throwIfAborted();
    backends = await startBackends(options.backend, registry);
    progress(`backends: ${describeBackends(backends)}`);
    // One Redis for the whole run; each round and target uses its own client ids, so its own keys.
    const redis = options.redis ? await startRedis(registry) : undefined;
    if (redis) progress(`redis: ${redis.url}`);
    const lg = LoadGenerator.start(registry);
    for (let round = 1; round <= options.rounds; round++) {
      const order = rotate(targets, round - 1);
      const results: RoundResult['results'] = {};
      for (const spec of order) {
        input.signal?.throwIfAborted();
        const target = await startTarget(spec, backends, registry, options.tetherCommand, options.logLevel, redis?.url);
        const perScenario: Partial<Record<Scenario, ScenarioResult>> = {};
        try {
          const idPrefix = `r${round}t${targets.indexOf(spec)}`;
          progress(`round ${round}/${options.rounds} ${spec.name}: warm-up`);
          await warmUp({ lg, target, backends, options, idPrefix });
          for (const scenario of options.scenarios) {
            input.signal?.throwIfAborted();
            progress(`round ${round}/${options.rounds} ${spec.name}: ${scenario}`);
            perScenario[scenario] = await runScenario(scenario, { lg, target, backends, options, idPrefix });
          }
        } finally {
          await target.stop();
        }
        results[spec.name] = perScenario;
      }
      rounds.push({ round, order: order.map((t) => t.name), results });
    }
  } finally {
    input.signal?.removeEventListener('abort', onAbort);
    await registry.stopAll();
  }
  const haproxy = baselines.includes('haproxy') ? haproxyVersion() : undefined;
  return {
    settings: {
      rounds: options.rounds,
      scenarios: options.scenarios,
      connections: options.connections,
      idleConnections: options.idleConnections,
      concurrency: options.concurrency,
      durationMs: options.durationMs,
      qos1Window: options.qos1Window,
      payloadBytes: options.payloadBytes,
      workers: options.workers,
      metrics: options.metrics,
      logLevel: options.logLevel,
      ...(options.redis ? { redis: true } : {}),
    },
    environment: { node: process.version, cpus: cpus().length, loadavg: loadavg(), clockTicks: clockTicksPerSecond(), ...(haproxy ? { haproxy } : {}) },
    backends: { kind: options.backend.kind, description: describeBackends(backends), addresses: backends.addresses.map((a) => `${a.host}:${a.port}`) },
    targets: targets.map((t) => ({ name: t.name, kind: t.kind, ...(t.kind === 'tether' && t.configFile ? { config: t.configFile } : {}), ...(t.kind === 'tether' && t.workers ? { workers: t.workers } : {}), ...(t.kind === 'tether' && t.metrics === false ? { metrics: false } : {}) })),
    baselines,
    rounds,
    ...summarize(targets.map((t) => t.name), baselines, options.scenarios, rounds, storePairs(targets)),
    notes,
    processes: registry.started,
    elapsedS: (performance.now() - started) / 1000,
  };
}

/** The baselines asked for; by default direct, and haproxy when it is installed. */
function chooseBaselines(options: ResolvedOptions, notes: string[]): Baseline[] {
  const installed = haproxyInstalled();
  if (options.baselines === undefined) {
    if (!installed) notes.push('haproxy baseline skipped: haproxy is not installed (apt-get install haproxy)');
    return installed ? ['direct', 'haproxy'] : ['direct'];
  }
  if (options.baselines.includes('haproxy') && !installed) throw new Error('the haproxy baseline needs haproxy installed (apt-get install haproxy)');
  return [...new Set(options.baselines)];
}

/** Readings that are too small to mean much, said next to the numbers rather than left to the reader. */
function noteCoarseReadings(options: ResolvedOptions, notes: string[]): void {
  if (options.scenarios.includes('idle') && options.idleConnections < 1_000) {
    notes.push(`RSS per connection from a hold of ${options.idleConnections} connections is mostly allocator and GC noise; hold 1,000 or more (--clients)`);
  }
  if (options.connections < 1_000 || options.durationMs < 1_000) {
    notes.push(`CPU time is read from /proc in ticks of ${1000 / clockTicksPerSecond()} ms: with ${options.connections} connections or ${options.durationMs} ms phases the per-operation CPU figures are coarse`);
  }
}

function rotate<T>(items: readonly T[], by: number): T[] {
  const k = by % items.length;
  return [...items.slice(k), ...items.slice(0, k)];
}
