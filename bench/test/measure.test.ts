import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chain, run } from './helpers.ts';

/** The machine-dependent measurements: only their plausibility can be asserted. */

type Gc = () => void;
const global = globalThis as { gc?: Gc };

describe('selection cost', () => {
  it('is timed for every chain', async () => {
    const result = await run({ chains: [['stick-table', 'least-connections'], ['least-connections']] }, { selectionBatch: 2_000 });
    for (const c of result.chains) {
      expect(c.measured.selectionBatch).toBe(2_000);
      expect(c.measured.nsPerSelection).toBeGreaterThan(0);
      // Even a slow CI machine selects in well under a millisecond.
      expect(c.measured.nsPerSelection).toBeLessThan(1_000_000);
    }
  });
});

describe('memory per remembered client', () => {
  const chains = [['stick-table', 'least-connections'], ['least-connections']];
  const original = global.gc;

  // `node --expose-gc` for this file only: the test runner does not pass the flag, and setting
  // it at run time gives the same gc() function (fine for a test, not for the product).
  beforeAll(() => {
    setFlagsFromString('--expose-gc');
    global.gc = runInNewContext('gc') as Gc;
  });
  afterAll(() => {
    if (original) global.gc = original;
    else delete global.gc;
  });

  it('divides the heap growth by the table entries; a chain without a table says so', async () => {
    const result = await run({ chains, clients: { count: 12_000, persistent: 0.5 } }, { memoryClients: 12_000 });
    expect(chain(result, 'least-connections').measured.memory).toEqual({ entries: 0, bytesPerEntry: undefined, note: 'keeps no per-client table' });
    const sticky = chain(result, 'stick-table+least-connections').measured.memory;
    // Every distinct client is remembered once.
    expect(sticky.entries).toBe(12_000);
    expect(sticky.bytesPerEntry).toBeGreaterThan(20);
    expect(sticky.bytesPerEntry).toBeLessThan(2_000);
    expect(sticky.note).toBe('excluding the key string');
  });

  it('counts only what a `when: persistent` table remembers', async () => {
    // Enough clients for a stable figure (small Maps grow in steps that swamp the per-entry cost).
    const doc = { chains: [['stick-table@persistent', 'least-connections']], duration: '10m', clients: { count: 48_000, persistent: 0.25 } };
    const memory = (await run(doc, { memoryClients: 48_000 })).chains[0]!.measured.memory;
    expect(memory.entries).toBeGreaterThan(11_000);
    expect(memory.entries).toBeLessThan(13_000);
    expect(memory.bytesPerEntry).toBeGreaterThan(20);
    expect(memory.bytesPerEntry).toBeLessThan(2_000);
  });

  it('without a gc() to call, reports how to get one instead of a noisy number', async () => {
    const gc = global.gc;
    delete global.gc;
    try {
      const result = await run({ chains }, { memoryClients: 1_000 });
      expect(chain(result, 'stick-table+least-connections').measured.memory).toEqual({ entries: 0, bytesPerEntry: undefined, note: expect.stringMatching(/--expose-gc/) as unknown });
    } finally {
      global.gc = gc;
    }
  });
});
