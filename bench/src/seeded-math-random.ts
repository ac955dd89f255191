import type { Prng } from './prng.ts';

/**
 * Runs `fn` with Math.random replaced by a seeded generator, then puts the original back.
 *
 * Why: some strategies draw from Math.random directly (random-two-choices has no seed option),
 * and a benchmark run must be reproducible from its seed. The plugins are used unmodified; only
 * the global they draw from is seeded while one chain is created and run. The seeded function
 * must be in place before the plugins are created: a strategy may keep a reference to whatever
 * Math.random was then (random-two-choices does, as a default parameter). Anything else drawing
 * from Math.random meanwhile would shift the sequence; the bench runs alone in its process.
 */
export async function withSeededMathRandom<T>(rng: Prng, fn: () => Promise<T>): Promise<T> {
  const original = Math.random;
  Math.random = () => rng.next();
  try {
    return await fn();
  } finally {
    Math.random = original;
  }
}
