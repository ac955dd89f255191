import type { StatsScope } from './plugin.ts';

/**
 * Process-wide counters and gauges. Names are snake_case; plugin counters are prefixed with the
 * plugin name. A plain Map keeps increments allocation-free on the hot path.
 */
export class Stats {
  readonly #counters = new Map<string, number>();

  inc(name: string, by = 1): void {
    this.#counters.set(name, (this.#counters.get(name) ?? 0) + by);
  }

  get(name: string): number {
    return this.#counters.get(name) ?? 0;
  }

  scope(prefix: string): StatsScope {
    return { inc: (name, by) => this.inc(`${prefix}_${name}`, by) };
  }

  snapshot(): Record<string, number> {
    return Object.fromEntries([...this.#counters].sort(([a], [b]) => a.localeCompare(b)));
  }
}
