/** Small statistics helpers: percentiles of latency samples, median and range of rounds. */

export interface LatencySummary {
  readonly count: number;
  readonly p50: number;
  readonly p99: number;
  readonly p999: number;
  readonly max: number;
}

/** Nearest-rank percentiles of `samples` (any unit); sorts a copy. Zeros when there is none. */
export function summarize(samples: ArrayLike<number>): LatencySummary {
  const sorted = Float64Array.from(samples).sort();
  const n = sorted.length;
  if (n === 0) return { count: 0, p50: 0, p99: 0, p999: 0, max: 0 };
  const at = (q: number): number => sorted[Math.min(n - 1, Math.max(0, Math.ceil(q * n) - 1))]!;
  return { count: n, p50: at(0.5), p99: at(0.99), p999: at(0.999), max: sorted[n - 1]! };
}

export interface RoundStat {
  readonly median: number;
  readonly min: number;
  readonly max: number;
  /** The value of each round, in round order. */
  readonly values: readonly number[];
}

/** Median (the mean of the two middle values for an even count), min and max; undefined if empty. */
export function roundStat(values: readonly number[]): RoundStat | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return { median, min: sorted[0]!, max: sorted[sorted.length - 1]!, values };
}
