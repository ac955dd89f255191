// What the Redis store adds to a connection's selection, measured in one process against a
// redis-server started for the run (no MQTT, no sockets but Redis's): CPU and wall time per
// selection through [stick-table, a fixed choice], 16 at a time, for a new key (the claim round
// trip), a cached key (no round trip), and the memory store for comparison; then the CPU of the
// batched touches per key.
// Run: node strategies/stick-table/bench/redis-path-cost.ts [selections]
import { RedisServer } from '../../../test/harness/redis.ts';
import { A, B, conn, openTable, route } from '../test/redis/helpers.ts';

const N = Number(process.argv[2] ?? 20_000);
const CONCURRENCY = 16;

async function measure(name: string, op: (i: number) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < 2_000; i++) await op(-i - 1);
  const latencies = new Float64Array(N);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let next = 0;
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (next < N) {
      const i = next++;
      const start = performance.now();
      await op(i);
      latencies[i] = performance.now() - start;
    }
  }));
  const cpu = process.cpuUsage(cpu0);
  const ms = performance.now() - t0;
  latencies.sort();
  const pct = (p: number): string => (latencies[Math.min(N - 1, Math.floor(p * N))]! * 1000).toFixed(0);
  console.log(JSON.stringify({ path: name, cpuUsPerSelection: Number(((cpu.user + cpu.system) / N).toFixed(1)), selectionsPerS: Math.round((N / ms) * 1000), p50Us: Number(pct(0.5)), p99Us: Number(pct(0.99)) }));
}

const server = await RedisServer.start();
try {
  const memory = await openTable({ type: 'memory' });
  await measure('memory store, new key', (i) => route(memory.strategy, conn(`m${i}`), [A, B], B));
  await memory.close();
  const t = await openTable({ type: 'redis', url: server.url, prefix: 'cost:' }, { expire: '10m' });
  await measure('redis store, new key (claim)', (i) => route(t.strategy, conn(`k${i}`), [A, B], B));
  await measure('redis store, cached key', (i) => route(t.strategy, conn(`k${Math.abs(i)}`), [A, B], B));
  await measure('redis store, cached key + disconnect', async (i) => {
    const c = conn(`k${Math.abs(i)}`);
    const r = await route(t.strategy, c, [A, B], B);
    t.strategy.onClosed!(c, r.backend);
  });
  // The touches queued above go out with the next flushes (one a second).
  const cpu0 = process.cpuUsage();
  await new Promise((resolve) => setTimeout(resolve, 2_500));
  const cpu = process.cpuUsage(cpu0);
  console.log(JSON.stringify({ path: 'batched touches', cpuUsPerKey: Number(((cpu.user + cpu.system) / N).toFixed(1)), keys: N }));
  await t.close();
} finally {
  await server.close();
}
