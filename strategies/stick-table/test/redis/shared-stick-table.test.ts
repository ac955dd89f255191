import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { skipReason } from '../../../../test/harness/binaries.ts';
import { waitFor } from '../../../../test/harness/poll.ts';
import { RedisServer } from '../../../../test/harness/redis.ts';
import { A, B, C, conn, openTable, route, type TestTable } from './helpers.ts';

/**
 * The stick table on a real redis-server (Debian's), through the real client library: two tables
 * on one Redis stand for two Tether instances. Every assertion reads Redis itself (redis-cli) or
 * what the table answers; nothing is mocked.
 */

const missing = skipReason('redis-server') + skipReason('redis-cli');

let redis: RedisServer;
const open: TestTable[] = [];
let prefixes = 0;

beforeAll(async () => {
  if (missing) return;
  redis = await RedisServer.start();
});
afterEach(async () => {
  await Promise.all(open.splice(0).map((t) => t.close()));
});
afterAll(async () => {
  await redis?.close();
});

/** A table with its own key prefix, so tests share the server without sharing keys. */
async function table(extra: Record<string, unknown> = {}, options: Record<string, unknown> = {}, testing: { claimWith?: 'auto' | 'script'; now?: () => number } = {}): Promise<TestTable & { prefix: string }> {
  const prefix = (extra.prefix as string | undefined) ?? `t${++prefixes}:`;
  const t = await openTable({ type: 'redis', url: redis.url, timeout: '200ms', ...extra, prefix }, { expire: '10m', ...options }, testing);
  open.push(t);
  return Object.assign(t, { prefix });
}

describe.skipIf(missing !== '')(`stick table on Redis${missing}`, () => {
  it('a new key: the cache misses, confirm claims it in Redis for the chain\'s choice, the cache learns it after the splice', async () => {
    const t = await table();
    const r = await route(t.strategy, conn('client-1'), [A, B], B);
    expect(r).toEqual({ backend: B, by: 'chain', remembered: false });
    expect(await redis.cli('GET', `${t.prefix}client-1`)).toBe('b');
    const ttl = Number(await redis.cli('PTTL', `${t.prefix}client-1`));
    // expire (10 min) plus the refresh slack (a tenth): see refreshSlack.
    expect(ttl).toBeGreaterThan(650_000);
    expect(ttl).toBeLessThanOrEqual(660_000);
    // Warm: answered from the cache, no Redis round trip needed.
    expect(await route(t.strategy, conn('client-1'), [A, B], A)).toEqual({ backend: B, by: 'cache', remembered: true });
    expect({ claims: t.count('store_claims'), hits: t.count('hits'), misses: t.count('misses') }).toEqual({ claims: 1, hits: 1, misses: 1 });
  });

  it('a key another instance learned: this one follows it before connecting (first writer wins), whatever its own chain chose', async () => {
    const first = await table();
    const second = await table({ prefix: first.prefix });
    await route(first.strategy, conn('shared'), [A, B], A);
    const r = await route(second.strategy, conn('shared'), [B, A], B);
    expect(r).toEqual({ backend: A, by: 'redis', remembered: true });
    expect(await redis.cli('GET', `${first.prefix}shared`)).toBe('a');
    expect(second.count('store_hits')).toBe(1);
    // Now cached on the second too.
    expect((await route(second.strategy, conn('shared'), [A, B], B)).by).toBe('cache');
  });

  it('with the claim script (servers without SET … NX GET) the claim behaves the same', async () => {
    const first = await table({}, {}, { claimWith: 'script' });
    const second = await table({ prefix: first.prefix }, {}, { claimWith: 'script' });
    expect((await route(first.strategy, conn('s1'), [A, B], B)).by).toBe('chain');
    expect(await route(second.strategy, conn('s1'), [A, B], A)).toEqual({ backend: B, by: 'redis', remembered: true });
    expect(Number(await redis.cli('PTTL', `${first.prefix}s1`))).toBeGreaterThan(590_000);
  });

  it('the key\'s backend is not available here: the key moves to the chain\'s choice, and the other instance\'s cache hears it', async () => {
    const first = await table();
    const second = await table({ prefix: first.prefix });
    await route(first.strategy, conn('mover'), [A, B], A);
    // The second instance cannot use a (down for it): it moves the key to c.
    const r = await route(second.strategy, conn('mover'), [B, C], C);
    expect(r).toEqual({ backend: C, by: 'chain', remembered: false });
    expect(await redis.cli('GET', `${first.prefix}mover`)).toBe('c');
    expect(second.count('store_moves')).toBe(1);
    // The first instance's cache had a: the invalidation makes it c.
    await waitFor(async () => (await route(first.strategy, conn('mover'), [A, B, C], A, { splice: false })).backend === C, { what: 'the first cache to follow the move' });
  });

  it('explain (dry run) reads Redis but never claims', async () => {
    const t = await table();
    const r = await route(t.strategy, conn('ghost', { dryRun: true }), [A, B], A);
    expect(r.by).toBe('chain');
    expect(await redis.cli('EXISTS', `${t.prefix}ghost`)).toBe('0');
    await redis.cli('SET', `${t.prefix}ghost`, 'b');
    expect(await route(t.strategy, conn('ghost', { dryRun: true }), [A, B], A)).toEqual({ backend: B, by: 'redis', remembered: true });
    expect(t.count('store_claims')).toBe(0);
  });

  it('match-only follows what Redis has and adds nothing', async () => {
    const t = await table({}, { mode: 'match-only' });
    expect((await route(t.strategy, conn('m1'), [A, B], A)).by).toBe('chain');
    expect(await redis.cli('EXISTS', `${t.prefix}m1`)).toBe('0');
    await redis.cli('SET', `${t.prefix}m1`, 'b');
    expect(await route(t.strategy, conn('m1'), [A, B], A)).toEqual({ backend: B, by: 'redis', remembered: true });
    expect((await route(t.strategy, conn('m1'), [A, B], A)).by).toBe('cache');
  });

  it('disconnects refresh the TTL in Redis, in batches, at most once per slack (a tenth of expire)', async () => {
    let skew = 0;
    const t = await table({}, { expire: '60s' }, { now: () => Date.now() + skew });
    await route(t.strategy, conn('quiet'), [A, B], A);
    await route(t.strategy, conn('ttl'), [A, B], A);
    const getex = async (): Promise<number> => Number(/cmdstat_getex:calls=(\d+)/.exec(await redis.cli('INFO', 'commandstats'))?.[1] ?? 0);
    const before = await getex();
    // A reconnect (answered from the cache) and its disconnect within the slack of the claim:
    // no command (Redis keeps the key at least `expire` from now anyway).
    const quiet = conn('quiet');
    expect((await route(t.strategy, quiet, [A, B], A)).by).toBe('cache');
    t.strategy.onClosed?.(quiet, A);
    // Past the slack (6 s of a 60 s expire), a disconnect refreshes the key.
    const c = conn('ttl');
    expect((await route(t.strategy, c, [A, B], A)).by).toBe('cache');
    await redis.cli('PEXPIRE', `${t.prefix}ttl`, '5000');
    skew = 7_000;
    t.strategy.onClosed?.(c, A);
    // Flushed within about a second: the TTL is the table's expire (plus the slack) again.
    await waitFor(async () => Number(await redis.cli('PTTL', `${t.prefix}ttl`)) > 50_000, { what: 'the TTL to be refreshed by the disconnect' });
    expect(await getex()).toBe(before + 1);
  });

  it('a key this cache has but Redis lost (expired, flushed) is written back by the next touch; a different backend there wins', async () => {
    let skew = 0;
    const t = await table({}, {}, { now: () => Date.now() + skew });
    await route(t.strategy, conn('lost'), [A, B], A);
    const c1 = conn('lost');
    await route(t.strategy, c1, [A, B], A);
    await redis.cli('DEL', `${t.prefix}lost`);
    // The next touch comes once the claim is older than the slack (a minute of the 10 min expire).
    skew += 61_000;
    t.strategy.onClosed?.(c1, A);
    await waitFor(async () => (await redis.cli('GET', `${t.prefix}lost`)) === 'a', { what: 'the write-back' });
    expect(t.count('store_writebacks')).toBeGreaterThanOrEqual(1);

    await route(t.strategy, conn('other'), [A, B], A);
    const c2 = conn('other');
    await route(t.strategy, c2, [A, B], A);
    await redis.cli('SET', `${t.prefix}other`, 'b');
    skew += 61_000;
    t.strategy.onClosed?.(c2, A);
    await waitFor(() => t.count('store_conflicts') >= 1, { what: 'the conflict to be seen' });
    expect(await redis.cli('GET', `${t.prefix}other`)).toBe('b');
    expect((await route(t.strategy, conn('other'), [A, B], A, { splice: false }))).toEqual({ backend: B, by: 'cache', remembered: true });
  });

  it('operator edits write Redis and reach the other instance\'s cache', async () => {
    const first = await table();
    const second = await table({ prefix: first.prefix });
    for (const key of ['e1', 'e2', 'e3']) await route(first.strategy, conn(key), [A, B], A);
    for (const key of ['e1', 'e2', 'e3']) await route(second.strategy, conn(key), [A, B], B);

    await first.strategy.setEntry!('e1', B);
    expect(await redis.cli('GET', `${first.prefix}e1`)).toBe('b');
    await waitFor(async () => (await route(second.strategy, conn('e1', { dryRun: true }), [A, B], A)).backend === B, { what: 'the set to reach the second cache' });

    expect(await first.strategy.deleteEntry!('e2')).toBe(true);
    expect(await redis.cli('EXISTS', `${first.prefix}e2`)).toBe('0');
    await waitFor(async () => (await second.view({ key: 'e2' })).entries.length === 0 && (await route(second.strategy, conn('e2', { dryRun: true }), [A, B], B)).by !== 'cache', { what: 'the delete to reach the second cache' });

    expect(await first.strategy.clearEntries!('a')).toBe(1);
    expect(await redis.cli('EXISTS', `${first.prefix}e1`, `${first.prefix}e3`)).toBe('1');
    expect(await redis.cli('GET', `${first.prefix}e1`)).toBe('b');
    expect(await first.strategy.clearEntries!()).toBe(1);
    expect(await redis.cli('EXISTS', `${first.prefix}e1`)).toBe('0');
  });

  it('the table view reads Redis in pages with SCAN, says which store it reads, and looks up one key', async () => {
    const t = await table();
    const keys = Array.from({ length: 2_500 }, (_, i) => `page-${String(i).padStart(4, '0')}`);
    // Written straight into Redis, as other instances would have.
    for (let i = 0; i < keys.length; i += 500) await redis.cli('MSET', ...keys.slice(i, i + 500).flatMap((k) => [`${t.prefix}${k}`, i % 1000 === 0 ? 'a' : 'b']));
    const seen = new Set<string>();
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = await t.view({ limit: 1_000, ...(cursor ? { cursor } : {}) });
      expect(page.store).toBe(`redis redis://127.0.0.1:${redis.port}/0 prefix ${t.prefix} (connected)`);
      expect(page.entries.length).toBeLessThanOrEqual(1_000);
      for (const e of page.entries) seen.add(e.key);
      cursor = page.cursor;
      pages++;
    } while (cursor !== undefined && pages < 10);
    expect(pages).toBeGreaterThanOrEqual(3);
    expect([...seen].sort()).toEqual(keys);
    const one = await t.view({ key: 'page-0001' });
    expect(one.entries).toEqual([expect.objectContaining({ key: 'page-0001', backend: 'a', use: 0 })]);
  });

  it('the prefix keeps balancers apart on one Redis', async () => {
    const one = await table({ prefix: 'app-one:' });
    const two = await table({ prefix: 'app-two:' });
    await route(one.strategy, conn('same-id'), [A, B], A);
    expect((await route(two.strategy, conn('same-id'), [A, B], B)).backend).toBe(B);
    expect(await redis.cli('MGET', 'app-one:same-id', 'app-two:same-id')).toBe('a\nb');
  });
});
