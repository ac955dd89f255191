// Measures the heap cost of one stick-table entry, beyond its key string.
// Run: node --expose-gc strategies/stick-table/bench/memory-per-entry.ts [entries]
import { StickTable } from '../src/stick-table.ts';

const n = Number(process.argv[2] ?? 100_000);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc');
const backend = { id: 'emqx1', host: '127.0.0.1', port: 1883, weight: 1, state: 'ready', sendProxy: 'none', maxconn: 0, activeConnections: 0 } as const;
// Keys are made before the first measurement so that only the table's own memory is counted.
const keys = Array.from({ length: n }, (_, i) => `client-${String(i).padStart(9, '0')}`);
gc();
const before = process.memoryUsage().heapUsed;
const table = new StickTable({ size: n, expireMs: 1_800_000, keyLength: 128, now: Date.now });
for (const key of keys) {
  table.store(key, backend);
  table.release(key);
}
gc();
const after = process.memoryUsage().heapUsed;
console.log(JSON.stringify({ entries: table.size, bytesPerEntry: Math.round((after - before) / n), keyBytes: 'not included (16-character keys here)' }));
