import type { StatsScope } from './plugin.ts';

/** A counter a plugin keeps through its StatsScope: the scope (the plugin's name) and its own name. */
export interface ScopedCounter {
  readonly scope: string;
  readonly name: string;
  readonly value: number;
}

/**
 * Process-wide counters and gauges. Names are snake_case; plugin counters are prefixed with the
 * plugin name. A plain Map keeps increments allocation-free on the hot path.
 */
export class Stats {
  readonly #counters = new Map<string, number>();
  /** Full names of the counters plugins made through `scope`, with their scope and short name. */
  readonly #scoped = new Map<string, { readonly scope: string; readonly name: string }>();

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
        if (full === undefined) {
          names.set(name, (full = `${prefix}_${name}`));
          this.#scoped.set(full, { scope: prefix, name });
        }
        this.inc(full, by);
      },
    };
  }

  /** Every counter a plugin has counted so far, for exporters that name them by plugin (Prometheus). */
  *scoped(): IterableIterator<ScopedCounter> {
    for (const [full, origin] of this.#scoped) yield { ...origin, value: this.get(full) };
  }

  snapshot(): Record<string, number> {
    return Object.fromEntries([...this.#counters].sort(([a], [b]) => a.localeCompare(b)));
  }
}
