import type { Backend } from '@tether/core';
import fc from 'fast-check';
import xxhash from 'xxhash-wasm';
import { beforeAll, describe, expect, it } from 'vitest';
import { Rendezvous } from '../src/rendezvous.ts';

const backend = (id: string, weight = 1): Backend => ({ id, host: '127.0.0.1', port: 1, weight, state: 'ready', sendProxy: 'none', maxconn: 0, activeConnections: 0 });
const backends = (n: number): Backend[] => Array.from({ length: n }, (_, i) => backend(`broker-${i + 1}`));
const KEYS = 100_000;
const keys = Array.from({ length: KEYS }, (_, i) => `client-${i}`);

let hrw: Rendezvous;
beforeAll(async () => {
  hrw = new Rendezvous((await xxhash()).h32);
});

function assign(pool: readonly Backend[]): string[] {
  return keys.map((k) => hrw.pick(k, pool)!.id);
}

describe('rendezvous hashing over 100k keys', () => {
  it('is deterministic: a second instance (another process, a restart) agrees on every key', async () => {
    const other = new Rendezvous((await xxhash()).h32);
    const pool = backends(5);
    const disagreements = keys.slice(0, 10_000).filter((k) => other.pick(k, pool)!.id !== hrw.pick(k, pool)!.id);
    expect(disagreements).toEqual([]);
  });

  it('does not depend on the order the backends are listed in', () => {
    const pool = backends(4);
    const reversed = [...pool].reverse();
    const disagreements = keys.slice(0, 10_000).filter((k) => hrw.pick(k, reversed)!.id !== hrw.pick(k, pool)!.id);
    expect(disagreements).toEqual([]);
  });

  it.each([2, 3, 4, 8, 16])('adding backend %i+1 moves about 1/(N+1) of the keys, all onto the new one', (n) => {
    const before = assign(backends(n));
    const after = assign(backends(n + 1));
    let moved = 0;
    let movedElsewhere = 0;
    for (let i = 0; i < KEYS; i++) {
      if (before[i] === after[i]) continue;
      moved++;
      if (after[i] !== `broker-${n + 1}`) movedElsewhere++;
    }
    expect(movedElsewhere).toBe(0);
    const expected = KEYS / (n + 1);
    // Binomial standard deviation is under 0.5% of the keys here; allow 5% of the expected count.
    expect(Math.abs(moved - expected)).toBeLessThan(expected * 0.05);
  });

  it('removing a backend moves only the keys it held', () => {
    const pool = backends(5);
    const before = assign(pool);
    const after = assign(pool.filter((b) => b.id !== 'broker-3'));
    let wronglyMoved = 0;
    let orphaned = 0;
    for (let i = 0; i < KEYS; i++) {
      if (before[i] !== 'broker-3' && after[i] !== before[i]) wronglyMoved++;
      if (after[i] === 'broker-3') orphaned++;
    }
    expect(wronglyMoved).toBe(0);
    expect(orphaned).toBe(0);
    expect(before.filter((id) => id === 'broker-3').length).toBeGreaterThan(KEYS / 6);
  });

  it('gives equal backends equal shares within 3%', () => {
    const counts = new Map<string, number>();
    for (const id of assign(backends(4))) counts.set(id, (counts.get(id) ?? 0) + 1);
    for (const count of counts.values()) expect(Math.abs(count - KEYS / 4)).toBeLessThan((KEYS / 4) * 0.03);
  });

  it('gives shares proportional to weight within 5%', () => {
    const pool = [backend('a', 1), backend('b', 2), backend('c', 5)];
    const counts = new Map<string, number>();
    for (const id of assign(pool)) counts.set(id, (counts.get(id) ?? 0) + 1);
    for (const b of pool) {
      const expected = (KEYS * b.weight) / 8;
      expect(Math.abs((counts.get(b.id) ?? 0) - expected)).toBeLessThan(expected * 0.05);
    }
  });

  it('property: for any backend set and key, removing a non-owner never changes the owner', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.string({ minLength: 1, maxLength: 12 }), { minLength: 2, maxLength: 16 }),
        fc.string({ maxLength: 40 }),
        fc.nat(),
        (ids, key, which) => {
          const pool = ids.map((id) => backend(id));
          const owner = hrw.pick(key, pool)!;
          const victim = pool.filter((b) => b !== owner)[which % (pool.length - 1)]!;
          expect(hrw.pick(key, pool.filter((b) => b !== victim))).toBe(owner);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('unit() stays strictly inside (0, 1)', () => {
    for (const [k, b] of [[0, 0], [0xffffffff, 0], [0, 0xffffffff], [0x12345678, 0x12345678]] as const) {
      const u = hrw.unit(k, b);
      expect(u).toBeGreaterThan(0);
      expect(u).toBeLessThan(1);
    }
  });
});
