import type { Backend } from '@tether/core';

/**
 * Picks the backend with the fewest live connections per unit of weight. Ties rotate (the scan
 * starts one place further each time), so equal backends fill evenly instead of the first one
 * taking every tie. Allocation-free: one pass over the offered backends.
 */
export class LeastConnections {
  #cursor = 0;

  pick(backends: readonly Backend[]): Backend | undefined {
    const n = backends.length;
    if (n === 0) return undefined;
    const start = this.#cursor++ % n;
    if (this.#cursor >= 1 << 30) this.#cursor = 0;
    let best = backends[start]!;
    let bestLoad = best.activeConnections / best.weight;
    for (let i = 1; i < n; i++) {
      const candidate = backends[(start + i) % n]!;
      const load = candidate.activeConnections / candidate.weight;
      if (load < bestLoad) {
        best = candidate;
        bestLoad = load;
      }
    }
    return best;
  }
}
