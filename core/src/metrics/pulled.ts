import { Counter, Gauge, type Aggregator, type LabelValues, type Registry } from 'prom-client';

/** Hands one series (its labels and value) to the metric being scraped. */
export type Emit<L extends string> = (labels: LabelValues<L>, value: number) => void;

export interface PulledOptions<L extends string> {
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly L[];
  /** How the primary merges this metric over workers (prom-client's AggregatorRegistry); default sum. */
  readonly aggregator?: Aggregator;
  /** Emits every series; called on each scrape, never on the data path. */
  readonly read: (emit: Emit<L>) => void | Promise<void>;
}

/**
 * Counters and gauges whose values are read when Prometheus scrapes, from plain numbers the data
 * path keeps (tether-metrics.ts says why). Every scrape starts from an empty metric, so a series
 * whose source is gone (a backend removed) disappears instead of showing a stale value.
 */
export function pulledCounter<L extends string>(registry: Registry, options: PulledOptions<L>): Counter<L> {
  const { read, ...config } = options;
  return new Counter<L>({
    ...config,
    labelNames: [...config.labelNames],
    registers: [registry],
    async collect() {
      this.reset();
      await read((labels, value) => this.inc(labels, value));
    },
  });
}

/** A gauge read at scrape time; see `pulledCounter`. */
export function pulledGauge<L extends string>(registry: Registry, options: PulledOptions<L>): Gauge<L> {
  const { read, ...config } = options;
  return new Gauge<L>({
    ...config,
    labelNames: [...config.labelNames],
    registers: [registry],
    async collect() {
      this.reset();
      await read((labels, value) => this.set(labels, value));
    },
  });
}
