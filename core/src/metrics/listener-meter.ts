import type { Histogram } from 'prom-client';

/**
 * What one listener has seen, kept as plain numbers by the data path and read at scrape time:
 * connections accepted, rejected (by reason) and how long their CONNECT took to arrive.
 */
export class ListenerMeter {
  accepted = 0;
  /** Rejections by reason (the ConnectionError's `reason`, e.g. `sniff_timeout`). */
  readonly rejected = new Map<string, number>();
  readonly #sniff: Histogram.Internal<'listener'>;

  constructor(sniff: Histogram.Internal<'listener'>) {
    this.#sniff = sniff;
  }

  accept(): void {
    this.accepted++;
  }

  reject(reason: string): void {
    this.rejected.set(reason, (this.rejected.get(reason) ?? 0) + 1);
  }

  /** The CONNECT was complete `ms` after the sniff began. */
  sniffed(ms: number): void {
    this.#sniff.observe(ms / 1000);
  }
}
