import type { Backend } from '@tether/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { StickTable } from '../src/stick-table.ts';

// Model-based check: random sequences of the operations the plugin performs (store on splice,
// release on close, match on select, time passing, periodic sweep) against a tiny model that only
// tracks what must hold: which keys are in use, by how many connections, on which backend.

const BACKENDS: Backend[] = ['a', 'b', 'c'].map((id) => ({ id, host: '127.0.0.1', port: 1, weight: 1, state: 'ready', sendProxy: 'none', maxconn: 0, activeConnections: 0 }));
const KEYS = ['k0', 'k1', 'k2', 'k3', 'k4', 'k5', 'k6', 'k7', 'k8', 'k9'];

type Op =
  | { op: 'store'; key: string; backend: number }
  | { op: 'release'; key: string }
  | { op: 'match'; key: string }
  | { op: 'advance'; ms: number }
  | { op: 'sweep' };

const key = fc.constantFrom(...KEYS);
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { arbitrary: fc.record({ op: fc.constant('store' as const), key, backend: fc.integer({ min: 0, max: BACKENDS.length - 1 }) }), weight: 4 },
  { arbitrary: fc.record({ op: fc.constant('release' as const), key }), weight: 3 },
  { arbitrary: fc.record({ op: fc.constant('match' as const), key }), weight: 2 },
  { arbitrary: fc.record({ op: fc.constant('advance' as const), ms: fc.integer({ min: 0, max: 80 }) }), weight: 2 },
  { arbitrary: fc.constant({ op: 'sweep' as const }), weight: 1 },
);

describe('StickTable under random operations', () => {
  it('never exceeds its size, never loses or moves an entry in use, and keeps use counts exact', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 100 }), fc.array(opArb, { maxLength: 120 }), (size, expireMs, ops) => {
        let now = 0;
        const table = new StickTable({ size, expireMs, keyLength: 128, now: () => now });
        const inUse = new Map<string, { use: number; backend: string }>();
        for (const step of ops) {
          switch (step.op) {
            case 'store': {
              const wasPresent = table.get(step.key) !== undefined;
              const stored = table.store(step.key, BACKENDS[step.backend]!);
              if (stored) {
                const m = inUse.get(step.key);
                inUse.set(step.key, { use: (m?.use ?? 0) + 1, backend: BACKENDS[step.backend]!.id });
              } else {
                // Refusal only happens for a new key when the table is full of connections in use.
                expect(wasPresent).toBe(false);
                expect(table.size).toBe(size);
                expect(inUse.size).toBe(size);
              }
              break;
            }
            case 'release': {
              // The plugin releases only what it stored (the connection carries a marker).
              const m = inUse.get(step.key);
              if (!m) break;
              table.release(step.key);
              if (m.use === 1) inUse.delete(step.key);
              else m.use--;
              break;
            }
            case 'match': {
              const owner = table.match(step.key);
              const m = inUse.get(step.key);
              if (m) expect(owner).toBe(m.backend);
              break;
            }
            case 'advance':
              now += step.ms;
              break;
            case 'sweep':
              table.sweep();
              break;
          }
          expect(table.size).toBeLessThanOrEqual(size);
          for (const [k, m] of inUse) {
            expect(table.get(k)).toMatchObject({ use: m.use, backend: m.backend });
          }
          // The table reports exactly the model's connections as in use, nothing more.
          const viewInUse = table.view('t').entries.filter((e) => e.use > 0).map((e) => e.key).sort();
          expect(viewInUse).toEqual([...inUse.keys()].sort());
        }
      }),
      { numRuns: 500 },
    );
  });

  it('after a sweep, holds no idle entry past its expiry', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 50 }), fc.array(fc.tuple(key, fc.integer({ min: 0, max: 30 }), fc.boolean()), { maxLength: 60 }), (expireMs, steps) => {
        let now = 0;
        const table = new StickTable({ size: 100, expireMs, keyLength: 128, now: () => now });
        for (const [k, dt, release] of steps) {
          now += dt;
          table.store(k, BACKENDS[0]!);
          if (release) table.release(k);
        }
        table.sweep();
        for (const entry of table.view('t').entries) {
          if (entry.use === 0) expect(now - entry.lastSeen).toBeLessThan(expireMs);
        }
      }),
      { numRuns: 300 },
    );
  });
});
