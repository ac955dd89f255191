import type { Backend } from '@tether/core';

/**
 * Smooth weighted round-robin (as in nginx): each pick adds every backend's weight to its credit,
 * takes the backend with the most credit and charges it the total. Weights 5:1:1 give
 * a a b a c a a rather than a a a a a b c. Credits are kept by backend name, so backends leaving
 * and returning do not reset the others.
 */
export class RoundRobin {
  readonly #credit = new Map<string, number>();

  pick(backends: readonly Backend[]): Backend | undefined {
    let best: Backend | undefined;
    let bestCredit = -Infinity;
    let total = 0;
    for (const backend of backends) {
      const credit = (this.#credit.get(backend.id) ?? 0) + backend.weight;
      this.#credit.set(backend.id, credit);
      total += backend.weight;
      if (credit > bestCredit) {
        bestCredit = credit;
        best = backend;
      }
    }
    if (best) this.#credit.set(best.id, bestCredit - total);
    return best;
  }
}
