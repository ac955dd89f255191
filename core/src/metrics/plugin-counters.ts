import { Counter, type Registry } from 'prom-client';
import type { Stats } from '../stats.ts';

/** `stick_table` + `hits` → `tether_stick_table_hits_total`. */
export function pluginCounterName(scope: string, name: string): string {
  const clean = (s: string): string => s.toLowerCase().replace(/[^a-z0-9_]+/g, '_').replace(/^_+|_+$/g, '');
  return `tether_${clean(scope)}_${clean(name)}_total`;
}

/**
 * Exports the counters plugins keep through `ctx.stats` (StatsScope.inc) as Prometheus counters,
 * one metric per plugin counter: the stick table's `hits` becomes `tether_stick_table_hits_total`,
 * a shared store's `store_errors` `tether_stick_table_store_errors_total`. A plugin's counters
 * exist from its first increment, so the metrics are made when a scrape first sees them; counters
 * whose names collide once cleaned up are summed.
 */
export class PluginCounters {
  readonly #registry: Registry;
  readonly #stats: Stats;
  readonly #metrics = new Map<string, Counter>();

  constructor(registry: Registry, stats: Stats) {
    this.#registry = registry;
    this.#stats = stats;
  }

  /** Makes the metrics for counters that appeared since the last scrape; call before reading the registry. */
  sync(): void {
    for (const { scope, name } of this.#stats.scoped()) {
      const metric = pluginCounterName(scope, name);
      if (this.#metrics.has(metric)) continue;
      // A plugin whose counter would take the name of one of Tether's own metrics is left out
      // rather than made to break the scrape (it stays under GET /stats).
      if (this.#registry.getSingleMetric(metric)) continue;
      const stats = this.#stats;
      this.#metrics.set(metric, new Counter({
        name: metric,
        help: `The ${scope.replace(/_/g, '-')} plugin's "${name}" counter (also under GET /stats as ${scope}_${name}).`,
        registers: [this.#registry],
        collect() {
          let sum = 0;
          for (const c of stats.scoped()) if (pluginCounterName(c.scope, c.name) === metric) sum += c.value;
          this.reset();
          // A plugin that counts down would make prom-client throw and fail the whole scrape.
          if (sum > 0) this.inc(sum);
        },
      }));
    }
  }
}
