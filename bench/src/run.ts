import { cpus } from 'node:os';
import type { ChainEntry, PluginRegistry } from '@tether/core';
import { buildBalancer } from './balancer.ts';
import { DEFAULT_CHAINS, uniqueNames } from './chains.ts';
import { connFactory } from './conn-factory.ts';
import { measureMemory, type MemoryCost } from './memory.ts';
import { addCounts, emptyCounts, stickiness, summarize, type SeriesSummary, type WindowCounts } from './metrics.ts';
import { Prng } from './prng.ts';
import { eventLabel, type ChainSpec, type Scenario } from './scenario.ts';
import { withSeededMathRandom } from './seeded-math-random.ts';
import { measureSelection } from './selection-cost.ts';
import { SimClock } from './sim-clock.ts';
import { simulate } from './simulator.ts';
import { buildTimeline } from './timeline.ts';
import { buildWorkload } from './workload.ts';

export interface BenchOptions {
  readonly scenario: Scenario;
  /** Plugins known by name (the CLI passes its built-ins); modules named in `plugins` are added to it. */
  readonly registry: PluginRegistry;
  /** Chains to compare instead of the scenario's (the command line's --chain). */
  readonly chains?: readonly ChainSpec[];
  /** Extra plugin modules (the command line's --plugin): absolute paths or package names. */
  readonly plugins?: readonly string[];
  /** Selections per timed round (default 20 000, best of 10 rounds); 0 skips the measurement. */
  readonly selectionBatch?: number;
  /** Distinct clients for the memory measurement (default: the scenario's clients, at most 100 000); 0 skips it. */
  readonly memoryClients?: number;
  readonly onProgress?: (progress: Progress) => void;
}

export interface Progress {
  readonly chain: string;
  /** 0-based. */
  readonly chainIndex: number;
  readonly chains: number;
  readonly step: number;
  readonly steps: number;
  /** `simulate` while the scenario plays; `measure` while selection and memory are timed. */
  readonly phase: 'simulate' | 'measure';
}

export type Counts = WindowCounts & { readonly stickiness: number | undefined };

export interface ChainResult {
  readonly name: string;
  readonly select: readonly ChainEntry[];
  /** Summed over the whole run. */
  readonly totals: Counts;
  /** One per window of `BenchResult.windows`. */
  readonly windows: readonly Counts[];
  readonly balance: {
    readonly maxMean: SeriesSummary;
    readonly cv: SeriesSummary;
    /** Per step; null where undefined (no connection on a ready backend). */
    readonly series: { readonly maxMean: readonly (number | null)[]; readonly cv: readonly (number | null)[] };
  };
  readonly connects: number;
  /** Live connections per backend at the end. */
  readonly connections: Readonly<Record<string, number>>;
  /** Persistent sessions held per backend at the end. */
  readonly sessions: Readonly<Record<string, number>>;
  /** Machine-dependent measurements: not reproducible from the seed, unlike everything else. */
  readonly measured: {
    readonly nsPerSelection: number | undefined;
    readonly selectionBatch: number;
    readonly memory: MemoryCost;
    readonly elapsedMs: number;
  };
}

export interface BenchResult {
  readonly scenario: {
    readonly name: string;
    readonly description: string;
    readonly source: string;
    readonly seed: number;
    readonly clients: Scenario['clients'];
    readonly durationMs: number;
    readonly stepMs: number;
    readonly steps: number;
    readonly sessionExpiryMs: number;
    readonly churn: Scenario['churn'];
    readonly backends: readonly { readonly name: string; readonly weight: number; readonly initiallyPresent: boolean }[];
    readonly events: readonly { readonly label: string; readonly type: string; readonly atMs: number }[];
  };
  /** The measuring windows: before the first event ("steady"), then one per event. */
  readonly windows: readonly { readonly label: string; readonly fromMs: number; readonly toMs: number; readonly event: number | null }[];
  readonly chains: readonly ChainResult[];
  readonly environment: { readonly node: string; readonly platform: string; readonly cpus: number; readonly cpu: string; readonly gcExposed: boolean };
}

/**
 * Runs every chain through the scenario, one after the other, on the same workload. Each chain
 * gets a fresh balancer for the simulation (then times its selection on the warm state) and
 * another fresh one for the memory measurement.
 */
export async function runBench(options: BenchOptions): Promise<BenchResult> {
  const { scenario, registry } = options;
  const chains = uniqueNames(options.chains ?? scenario.chains ?? DEFAULT_CHAINS);
  const plugins = [...scenario.plugins, ...(options.plugins ?? [])];
  const timeline = buildTimeline(scenario);
  const workload = buildWorkload(scenario);
  const selectionBatch = options.selectionBatch ?? 20_000;
  const memoryClients = options.memoryClients ?? Math.min(scenario.clients.count, 100_000);

  const results: ChainResult[] = [];
  for (const [chainIndex, chain] of chains.entries()) {
    const started = performance.now();
    const build = async (clock: SimClock) => buildBalancer({ registry, backends: timeline.backends, chain, key: scenario.key, plugins, now: clock.now });
    const report = (step: number, phase: Progress['phase']): void =>
      options.onProgress?.({ chain: chain.name, chainIndex, chains: chains.length, step, steps: scenario.steps, phase });
    const onStep = options.onProgress ? (step: number) => report(step, 'simulate') : undefined;
    // The same seeded stream for every chain, installed before the plugins are created (a
    // strategy may keep a reference to Math.random from then): random strategies draw the same
    // numbers in every run.
    const { sim, selection } = await withSeededMathRandom(new Prng(scenario.seed, 'strategy'), async () => {
      const clock = new SimClock(scenario.stepMs);
      const balancer = await build(clock);
      try {
        const sim = await simulate({ scenario, timeline, workload, balancer, clock, ...(onStep ? { onStep } : {}) });
        report(scenario.steps - 1, 'measure');
        const selection = await measureSelection(balancer, workload, connFactory(balancer, workload), new Prng(scenario.seed, 'selection'), selectionBatch);
        return { sim, selection };
      } finally {
        await balancer.close();
      }
    });

    let memory: MemoryCost = { entries: 0, bytesPerEntry: undefined, note: 'not measured' };
    if (memoryClients > 0) {
      memory = await withSeededMathRandom(new Prng(scenario.seed, 'memory'), async () => {
        const fresh = await build(new SimClock(scenario.stepMs));
        try {
          return await measureMemory(fresh, connFactory(fresh, workload), Math.min(memoryClients, workload.ids.length));
        } finally {
          await fresh.close();
        }
      });
    }

    const windows = sim.windows.map(withStickiness);
    results.push({
      name: chain.name,
      select: chain.select,
      totals: withStickiness(sim.windows.reduce(addCounts, emptyCounts())),
      windows,
      balance: {
        maxMean: summarize(sim.maxMean),
        cv: summarize(sim.cv),
        series: { maxMean: toJsonSeries(sim.maxMean), cv: toJsonSeries(sim.cv) },
      },
      connects: sim.connects,
      connections: sim.connections,
      sessions: sim.sessions,
      measured: { nsPerSelection: selection?.nsPerSelection, selectionBatch, memory, elapsedMs: Math.round(performance.now() - started) },
    });
  }

  return {
    scenario: {
      name: scenario.name,
      description: scenario.description,
      source: scenario.source,
      seed: scenario.seed,
      clients: scenario.clients,
      durationMs: scenario.durationMs,
      stepMs: scenario.stepMs,
      steps: scenario.steps,
      sessionExpiryMs: scenario.sessionExpiryMs,
      churn: scenario.churn,
      backends: timeline.backends,
      events: scenario.events.map((e) => ({ label: eventLabel(e), type: e.type, atMs: e.at })),
    },
    windows: timeline.windows.map((w) => ({ label: w.label, fromMs: w.fromStep * scenario.stepMs, toMs: w.toStep * scenario.stepMs, event: w.event ?? null })),
    chains: results,
    environment: {
      node: process.version,
      platform: `${process.platform}-${process.arch}`,
      cpus: cpus().length,
      cpu: cpus()[0]?.model ?? 'unknown',
      gcExposed: typeof (globalThis as { gc?: unknown }).gc === 'function',
    },
  };
}

function withStickiness(c: WindowCounts): Counts {
  return { ...c, stickiness: stickiness(c) };
}

/** Rounded (the report does not need 16 digits) and with NaN as null, which JSON can carry. */
function toJsonSeries(values: Float64Array): (number | null)[] {
  return Array.from(values, (v) => (Number.isNaN(v) ? null : Math.round(v * 10_000) / 10_000));
}
