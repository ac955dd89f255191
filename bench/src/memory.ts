import type { Balancer } from './balancer.ts';
import type { ConnFactory } from './conn-factory.ts';

export interface MemoryCost {
  /** Entries in the chain's tables after `clients` distinct clients connected and left. */
  readonly entries: number;
  /** Heap bytes per table entry, the key string itself excluded; undefined when not measured. */
  readonly bytesPerEntry: number | undefined;
  /** Why there is no number, or what it does not include. */
  readonly note: string;
}

type Gc = () => void;

/**
 * Heap cost of what the chain remembers per client: `clients` distinct clients connect and
 * disconnect once through a fresh balancer, and the heap growth (after a full GC on both sides)
 * is divided by the number of table entries (strategies that expose `table()`). The key strings
 * already exist before the first measurement (the workload made them), so they are not counted:
 * add about 16 + length bytes for an ASCII key. Needs `global.gc` (node --expose-gc).
 */
export async function measureMemory(balancer: Balancer, newConn: ConnFactory, clients: number): Promise<MemoryCost> {
  if ((await balancer.chain.tables()).length === 0) return { entries: 0, bytesPerEntry: undefined, note: 'keeps no per-client table' };
  const gc = (globalThis as { gc?: Gc }).gc;
  if (typeof gc !== 'function') return { entries: 0, bytesPerEntry: undefined, note: 'not measured: run node with --expose-gc (NODE_OPTIONS=--expose-gc)' };
  const { pool, chain } = balancer;
  gc();
  const before = process.memoryUsage().heapUsed;
  for (let c = 0; c < clients; c++) {
    // Each connection object becomes garbage at once; only what the strategies keep survives the GC.
    const conn = newConn(c);
    const choice = await chain.select(conn, pool.available());
    if (!choice) continue;
    pool.connectionOpened(choice.backend);
    chain.spliced(conn, choice.backend);
    pool.connectionClosed(choice.backend);
    chain.closed(conn, choice.backend);
  }
  gc();
  const after = process.memoryUsage().heapUsed;
  const entries = (await chain.tables({ limit: 0 })).reduce((sum, t) => sum + t.used, 0);
  if (entries === 0) return { entries, bytesPerEntry: undefined, note: 'the table stayed empty' };
  // Maps grow their storage in doublings, so a small table's figure depends on where it sits
  // between two of them; from about 10 000 entries on it settles.
  if (after <= before) return { entries, bytesPerEntry: undefined, note: `too few entries (${entries}) to measure` };
  const rough = entries < 10_000 ? `, rough with only ${entries} entries` : '';
  return { entries, bytesPerEntry: (after - before) / entries, note: `excluding the key string${rough}` };
}
