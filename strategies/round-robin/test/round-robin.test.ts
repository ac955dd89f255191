import type { Backend } from '@tether/core';
import { describe, expect, it } from 'vitest';
import { RoundRobin } from '../src/round-robin.ts';

const backend = (id: string, weight = 1): Backend => ({ id, host: '127.0.0.1', port: 1, weight, state: 'ready', sendProxy: 'none', maxconn: 0, activeConnections: 0 });

describe('smooth weighted round-robin', () => {
  it('takes equal backends in turn', () => {
    const rr = new RoundRobin();
    const pool = [backend('a'), backend('b'), backend('c')];
    expect(Array.from({ length: 6 }, () => rr.pick(pool)!.id)).toEqual(['a', 'b', 'c', 'a', 'b', 'c']);
  });

  it('interleaves by weight (5:1:1 is a a b a c a a, not a run of five)', () => {
    const rr = new RoundRobin();
    const pool = [backend('a', 5), backend('b'), backend('c')];
    expect(Array.from({ length: 7 }, () => rr.pick(pool)!.id).join(' ')).toBe('a a b a c a a');
  });

  it('gives exact weighted shares over whole cycles', () => {
    const rr = new RoundRobin();
    const pool = [backend('a', 3), backend('b', 2), backend('c', 1)];
    const counts = new Map<string, number>();
    for (let i = 0; i < 600; i++) {
      const id = rr.pick(pool)!.id;
      counts.set(id, (counts.get(id) ?? 0) + 1);
    }
    expect(Object.fromEntries(counts)).toEqual({ a: 300, b: 200, c: 100 });
  });

  it('keeps going when a backend leaves the offered set', () => {
    const rr = new RoundRobin();
    const pool = [backend('a'), backend('b'), backend('c')];
    rr.pick(pool);
    const without = pool.filter((b) => b.id !== 'b');
    const picks = Array.from({ length: 100 }, () => rr.pick(without)!.id);
    expect(picks).not.toContain('b');
    expect(Math.abs(picks.filter((id) => id === 'a').length - 50)).toBeLessThanOrEqual(1);
    expect(rr.pick([])).toBeUndefined();
  });
});
