import type { Backend } from '@tether/core';
import { describe, expect, it } from 'vitest';
import { TwoChoices } from '../src/two-choices.ts';

type Mutable = { -readonly [K in keyof Backend]: Backend[K] };
const backend = (id: string, activeConnections = 0, weight = 1): Mutable => ({ id, host: '127.0.0.1', port: 1, weight, state: 'ready', sendProxy: 'none', maxconn: 0, activeConnections });

/** A small seeded generator (mulberry32) so the test is reproducible. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('power of two choices', () => {
  it('between two backends always takes the less loaded one', () => {
    const picker = new TwoChoices(seeded(1));
    const pool = [backend('busy', 10), backend('idle', 1)];
    for (let i = 0; i < 100; i++) expect(picker.pick(pool)!.id).toBe('idle');
  });

  it('never picks the most loaded of three', () => {
    const picker = new TwoChoices(seeded(2));
    const pool = [backend('a', 1), backend('b', 2), backend('c', 50)];
    for (let i = 0; i < 300; i++) expect(picker.pick(pool)!.id).not.toBe('c');
  });

  it('keeps live counts even when connections accumulate (max/min close to 1)', () => {
    const picker = new TwoChoices(seeded(3));
    const pool = Array.from({ length: 8 }, (_, i) => backend(`b${i}`));
    for (let i = 0; i < 8000; i++) (picker.pick(pool) as Mutable).activeConnections += 1;
    const counts = pool.map((b) => b.activeConnections);
    expect(Math.max(...counts) - Math.min(...counts)).toBeLessThanOrEqual(4);
  });

  it('respects weights: a weight-3 backend ends with about three times the connections', () => {
    const picker = new TwoChoices(seeded(4));
    const pool = [backend('heavy', 0, 3), backend('light1'), backend('light2')];
    for (let i = 0; i < 5000; i++) (picker.pick(pool) as Mutable).activeConnections += 1;
    const heavy = pool[0]!.activeConnections;
    expect(heavy / pool[1]!.activeConnections).toBeGreaterThan(2.7);
    expect(heavy / pool[1]!.activeConnections).toBeLessThan(3.3);
  });

  it('handles one and zero backends', () => {
    const picker = new TwoChoices(seeded(5));
    const only = backend('only');
    expect(picker.pick([only])).toBe(only);
    expect(picker.pick([])).toBeUndefined();
  });
});
