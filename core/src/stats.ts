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
    // Plugins count on every connection: build each prefixed name once, not per increment.
    const names = new Map<string, string>();
    return {
      inc: (name, by) => {
        let full = names.get(name);
        if (full === undefined) names.set(name, (full = `${prefix}_${name}`));
        this.inc(full, by);
      },
    };
  }

  snapshot(): Record<string, number> {
    return Object.fromEntries([...this.#counters].sort(([a], [b]) => a.localeCompare(b)));
  }
}
