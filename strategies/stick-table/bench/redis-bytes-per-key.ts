// Measures what one stick-table entry costs in Redis, stored as the Redis store stores it
// (`SET <prefix><key> <backend> NX GET PX <expire>`), on a redis-server started for the run.
// Run: node strategies/stick-table/bench/redis-bytes-per-key.ts [keys] [key length]
// Needs Debian's redis-server. Prints used_memory per key, and MEMORY USAGE of a sample of keys.
import { Redis } from 'ioredis';
import { RedisServer } from '../../../test/harness/redis.ts';

const n = Number(process.argv[2] ?? 100_000);
const keyLength = Number(process.argv[3] ?? 16);
const prefix = 'tether:';
const backend = 'emqx1';
const expireMs = 1_800_000;
const BATCH = 1_000;

const server = await RedisServer.start();
const redis = new Redis({ host: '127.0.0.1', port: server.port, lazyConnect: true });
try {
  await redis.connect();
  const usedMemory = async (): Promise<number> => Number(/used_memory:(\d+)/.exec(await redis.info('memory'))![1]);
  const key = (i: number): string => `${prefix}${`client-${i}`.padEnd(keyLength, 'x').slice(0, keyLength)}`;
  const before = await usedMemory();
  for (let i = 0; i < n; i += BATCH) {
    const pipeline = redis.pipeline();
    for (let j = i; j < Math.min(n, i + BATCH); j++) pipeline.call('SET', key(j), backend, 'NX', 'GET', 'PX', expireMs);
    await pipeline.exec();
  }
  const after = await usedMemory();
  const sample = Math.min(1_000, n);
  let usage = 0;
  for (let i = 0; i < sample; i++) usage += Number(await redis.call('MEMORY', 'USAGE', key(Math.floor((i * n) / sample)), 'SAMPLES', '0'));
  const version = /redis_version:(\S+)/.exec(await redis.info('server'))![1];
  const allocator = /mem_allocator:(\S+)/.exec(await redis.info('memory'))![1];
  console.log(JSON.stringify({
    redis: version, allocator, keys: Number(await redis.dbsize()), keyLength, key: `"${prefix}" + ${keyLength} characters`, value: backend,
    usedMemoryPerKey: Math.round((after - before) / n),
    memoryUsagePerKey: Math.round(usage / sample),
  }));
} finally {
  redis.disconnect();
  await server.close();
}
