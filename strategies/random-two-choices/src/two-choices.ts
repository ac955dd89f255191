import type { Backend } from '@tether/core';

export type Random = () => number;

/**
 * The power of two random choices: draw two different backends, weighted by weight, and take the
 * one with fewer live connections per unit of weight. Nearly as even as least-connections, with
 * no herd onto one "emptiest" backend when many balancers (or workers) decide at once.
 */
export class TwoChoices {
  readonly #random: Random;

  constructor(random: Random = Math.random) {
    this.#random = random;
  }

  pick(backends: readonly Backend[]): Backend | undefined {
    const n = backends.length;
    if (n <= 1) return backends[0];
    const first = this.#draw(backends, undefined);
    const second = this.#draw(backends, first);
    return load(second) < load(first) ? second : first;
  }

  /** A weighted draw, excluding `not` (so the two choices differ). */
  #draw(backends: readonly Backend[], not: Backend | undefined): Backend {
    let total = 0;
    for (const b of backends) if (b !== not) total += b.weight;
    let r = this.#random() * total;
    let last = backends[0]!;
    for (const b of backends) {
      if (b === not) continue;
      last = b;
      r -= b.weight;
      if (r < 0) return b;
    }
    return last;
  }
}

function load(b: Backend): number {
  return b.activeConnections / b.weight;
}
