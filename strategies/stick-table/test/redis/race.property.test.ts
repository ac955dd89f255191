import fc from 'fast-check';
import type { Backend } from '@tether/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { skipReason } from '../../../../test/harness/binaries.ts';
import { RedisServer } from '../../../../test/harness/redis.ts';
import { A, B, C, conn, openTable, route, type TestTable } from './helpers.ts';

/**
 * First writer wins, as a property over many keys and interleavings: two instances (two tables,
 * each with its own Redis connections, its own cache, its backends in its own order and its own
 * chain's choices) see the same new keys at the same moment. Whatever the order the connections
 * start in (fast-check's scheduler decides it) and however their requests meet in Redis, every
 * connection of a key, on either instance, goes to one backend, the one Redis holds.
 */

const missing = skipReason('redis-server');
const BACKENDS: readonly Backend[] = [A, B, C];

let redis: RedisServer;
beforeAll(async () => {
  if (!missing) redis = await RedisServer.start();
});
afterAll(() => redis?.close());

let run = 0;

describe.skipIf(missing !== '')(`stick table on Redis: concurrent first sights of a key${missing}`, { timeout: 120_000 }, () => {
  it('every key ends on one backend, on both instances, whatever the interleaving', async () => {
    const connection = fc.record({
      key: fc.integer({ min: 0, max: 11 }),
      instance: fc.integer({ min: 0, max: 1 }),
      proposal: fc.constantFrom(...BACKENDS),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(connection, { minLength: 2, maxLength: 40 }), fc.boolean(), fc.scheduler(), async (connections, script, s) => {
        const prefix = `race${++run}:`;
        const store = { type: 'redis', url: redis.url, prefix, timeout: '2s' };
        const testing = script ? { claimWith: 'script' as const } : {};
        const tables: TestTable[] = [await openTable(store, {}, testing), await openTable(store, {}, testing)];
        try {
          // Each instance offers the backends in its own order.
          const offered = [BACKENDS, [...BACKENDS].reverse()];
          const pending = connections.map(async (c) => {
            // The scheduler decides when each connection starts; then it runs for real against Redis.
            await s.schedule(Promise.resolve(), `conn k${c.key} on ${c.instance}`);
            const r = await route(tables[c.instance]!.strategy, conn(`key-${c.key}`), offered[c.instance]!, c.proposal);
            return { key: c.key, backend: r.backend.id };
          });
          await s.waitAll();
          const landed = await Promise.all(pending);
          const byKey = new Map<number, Set<string>>();
          for (const l of landed) byKey.set(l.key, (byKey.get(l.key) ?? new Set()).add(l.backend));
          for (const [key, backends] of byKey) {
            expect([...backends], `key-${key} landed on`).toHaveLength(1);
            expect(await redis.cli('GET', `${prefix}key-${key}`)).toBe([...backends][0]);
          }
        } finally {
          await Promise.all(tables.map((t) => t.close()));
        }
      }),
      { numRuns: 40 },
    );
  });
});
