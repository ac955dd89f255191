import { metricsOf, type Scenario } from './metrics.ts';
import type { Baseline } from './options.ts';
import type { RoundResult } from './run.ts';
import type { Busy } from './scenarios.ts';
import { roundStat, type RoundStat } from './stats.ts';

type PerScenario<T> = Partial<Record<Scenario, T>>;

export interface Summary {
  /** target -> scenario -> metric -> median, min and max over rounds. */
  readonly summary: Record<string, PerScenario<Record<string, RoundStat>>>;
  /** target -> baseline -> scenario -> metric -> target median / baseline median. */
  readonly ratios: Record<string, Partial<Record<Baseline, PerScenario<Record<string, number>>>>>;
  /** target -> scenario -> CPU busy fractions (1 = one core) during the measured parts. */
  readonly busy: Record<string, PerScenario<{ balancer?: RoundStat; balancerUser?: RoundStat; backends?: RoundStat; loadgen?: RoundStat }>>;
  /** target -> scenario -> errors summed over rounds (left out when none). */
  readonly errors: Record<string, PerScenario<{ count: number; first: string }>>;
  /**
   * Redis-store target -> its memory-store twin of the same run, the ratio of every metric
   * (median / median) and, for latencies, what the Redis store adds (median minus median).
   */
  readonly stores?: Record<string, { against: string; ratios: PerScenario<Record<string, number>>; added: PerScenario<Record<string, number>> }>;
}

/** Medians with min-max over rounds, and their ratios to each baseline. */
export function summarize(targets: readonly string[], baselines: readonly Baseline[], scenarios: readonly Scenario[], rounds: readonly RoundResult[], storePairs: readonly (readonly [string, string])[] = []): Summary {
  const summary: Summary['summary'] = {};
  const busy: Summary['busy'] = {};
  const errors: Summary['errors'] = {};
  for (const target of targets) {
    summary[target] = {};
    busy[target] = {};
    for (const scenario of scenarios) {
      const results = rounds.map((r) => r.results[target]?.[scenario]).filter((r) => r !== undefined);
      const metrics: Record<string, RoundStat> = {};
      for (const def of metricsOf(scenario)) {
        const stat = roundStat(results.map((r) => r.metrics[def.key]).filter((v): v is number => typeof v === 'number' && Number.isFinite(v)));
        if (stat) metrics[def.key] = stat;
      }
      summary[target][scenario] = metrics;
      const of = (pick: (b: Busy) => number | null): RoundStat | undefined => roundStat(results.map((r) => pick(r.busy)).filter((v): v is number => v !== null));
      const b = { balancer: of((x) => x.balancer), balancerUser: of((x) => x.balancerUser), backends: of((x) => x.backends), loadgen: of((x) => x.loadgen) };
      busy[target][scenario] = Object.fromEntries(Object.entries(b).filter(([, v]) => v !== undefined));
      const count = results.reduce((n, r) => n + r.errors, 0);
      if (count > 0) (errors[target] ??= {})[scenario] = { count, first: results.find((r) => r.firstError)?.firstError ?? '' };
    }
  }
  const ratios: Summary['ratios'] = {};
  for (const target of targets) {
    if ((baselines as readonly string[]).includes(target)) continue;
    ratios[target] = {};
    for (const baseline of baselines) {
      const per: PerScenario<Record<string, number>> = {};
      for (const scenario of scenarios) {
        const mine = summary[target]?.[scenario] ?? {};
        const theirs = summary[baseline]?.[scenario] ?? {};
        const r: Record<string, number> = {};
        for (const [key, stat] of Object.entries(mine)) {
          const base = theirs[key];
          if (base && base.median !== 0) r[key] = stat.median / base.median;
        }
        per[scenario] = r;
      }
      ratios[target][baseline] = per;
    }
  }
  const stores: NonNullable<Summary['stores']> = {};
  for (const [redis, memory] of storePairs) {
    const ratios: PerScenario<Record<string, number>> = {};
    const added: PerScenario<Record<string, number>> = {};
    for (const scenario of scenarios) {
      const mine = summary[redis]?.[scenario] ?? {};
      const theirs = summary[memory]?.[scenario] ?? {};
      const r: Record<string, number> = {};
      const a: Record<string, number> = {};
      for (const [key, stat] of Object.entries(mine)) {
        const base = theirs[key];
        if (!base) continue;
        if (base.median !== 0) r[key] = stat.median / base.median;
        if (/Ms$|Us$/.test(key)) a[key] = stat.median - base.median;
      }
      ratios[scenario] = r;
      added[scenario] = a;
    }
    stores[redis] = { against: memory, ratios, added };
  }
  return { summary, ratios, busy, errors, ...(storePairs.length > 0 ? { stores } : {}) };
}
