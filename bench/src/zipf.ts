import type { Prng } from './prng.ts';

/** Draws a client index in [0, n): which client's connection drops next. */
export interface KeySampler {
  sample(rng: Prng): number;
}

/** Every client equally likely. */
export class UniformSampler implements KeySampler {
  readonly #n: number;

  constructor(n: number) {
    this.#n = n;
  }

  sample(rng: Prng): number {
    return rng.int(this.#n);
  }
}

/**
 * Zipf over ranks 1..n with exponent s: client i (rank i + 1) is drawn with probability
 * proportional to 1 / (i + 1)^s, so a few hot clients reconnect far more often than the rest
 * (flaky devices, retry loops). Inverse-CDF sampling over a precomputed table: O(n) memory
 * (8 bytes per client) once, then O(log n) per draw, exact for any exponent (rejection methods
 * need s > 1).
 */
export class ZipfSampler implements KeySampler {
  readonly #cdf: Float64Array;

  constructor(n: number, exponent: number) {
    if (!(n >= 1)) throw new RangeError('Zipf needs at least one rank');
    if (!(exponent >= 0)) throw new RangeError('Zipf exponent must be >= 0');
    this.#cdf = new Float64Array(n);
    let total = 0;
    for (let i = 0; i < n; i++) {
      total += 1 / Math.pow(i + 1, exponent);
      this.#cdf[i] = total;
    }
    for (let i = 0; i < n; i++) this.#cdf[i]! /= total;
    // Rounding can leave the last value a hair under 1; a draw above it must still land somewhere.
    this.#cdf[n - 1] = 1;
  }

  /** Probability of drawing index i (for tests and reports). */
  probability(i: number): number {
    return this.#cdf[i]! - (i > 0 ? this.#cdf[i - 1]! : 0);
  }

  sample(rng: Prng): number {
    const u = rng.next();
    // The first index whose cumulative probability exceeds u.
    let lo = 0;
    let hi = this.#cdf.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#cdf[mid]! > u) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }
}
