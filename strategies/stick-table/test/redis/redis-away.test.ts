import { afterEach, describe, expect, it } from 'vitest';
import { skipReason } from '../../../../test/harness/binaries.ts';
import { logLines, waitFor } from '../../../../test/harness/poll.ts';
import { RedisServer } from '../../../../test/harness/redis.ts';
import { A, B, conn, openTable, route, type TestTable } from './helpers.ts';

/**
 * Redis away, slow, or back with an empty keyspace, with a real redis-server stopped (SIGTERM),
 * paused (SIGSTOP: it accepts and never answers) and restarted on the same port. What must hold:
 * no connection waits longer than the store's timeout, every one gets a backend, what was learned
 * meanwhile reaches Redis when it is back (first writer wins), nothing is leaked when the table
 * closes.
 */

const missing = skipReason('redis-server') + skipReason('redis-cli');
const TIMEOUT_MS = 100;
/**
 * "Within the bound": a connection's wait on Redis is the store's timeout; this margin is for a
 * loaded test machine (event loop lag), far below what waiting for a reconnect would take.
 */
const BOUND_MS = TIMEOUT_MS + 900;

const servers: RedisServer[] = [];
const tables: TestTable[] = [];
afterEach(async () => {
  await Promise.all(tables.splice(0).map((t) => t.close()));
  for (const s of servers.splice(0)) {
    if (s.pid !== undefined) {
      try {
        process.kill(s.pid, 'SIGCONT');
      } catch {
        // not running
      }
    }
    await s.close();
  }
});

async function server(): Promise<RedisServer> {
  const s = await RedisServer.start();
  servers.push(s);
  return s;
}

async function table(redis: RedisServer): Promise<TestTable> {
  const t = await openTable({ type: 'redis', url: redis.url, timeout: `${TIMEOUT_MS}ms` }, { expire: '10m' });
  tables.push(t);
  return t;
}

async function timed<T>(work: Promise<T>): Promise<{ value: T; ms: number }> {
  const start = performance.now();
  const value = await work;
  return { value, ms: performance.now() - start };
}

describe.skipIf(missing !== '')(`stick table on Redis, when Redis is away or slow${missing}`, { timeout: 60_000 }, () => {
  it('Redis down at start: the table starts, connections are decided by the chain at once, learns are written back when Redis comes', async () => {
    const redis = await server();
    await redis.stop();
    const { ms: startMs, value: t } = await timed(table(redis));
    expect(startMs).toBeLessThan(5_000);
    expect(logLines(t.logs, { msg: 'stick table store: Redis is not reachable at start; starting without it (each connection is decided by the rest of the chain and written back later)' })).toHaveLength(1);
    const view = await t.view();
    expect(view.store).toMatch(/^redis redis:\/\/127\.0\.0\.1:\d+\/0 prefix tether: \((connecting|unreachable for \d+ s): showing this instance's cache\)$/);

    const c = conn('learned-offline');
    const r = await timed(route(t.strategy, c, [A, B], B));
    expect(r.value).toEqual({ backend: B, by: 'chain', remembered: false });
    expect(r.ms).toBeLessThan(BOUND_MS);
    expect(t.count('store_unavailable')).toBe(1);

    await redis.restart();
    await waitFor(async () => (await redis.cli('GET', 'tether:learned-offline')) === 'b', { what: 'the offline learn to be written back', timeoutMs: 30_000, intervalMs: 100 });
    expect(t.count('store_connected')).toBe(1);
    expect((await t.view()).store).toBe(`redis redis://127.0.0.1:${redis.port}/0 prefix tether: (connected)`);
  });

  it('Redis stopped mid-run: connections go on within the bound; restarted empty, the instance reconnects and writes its cache back; a key another writer took meanwhile wins', async () => {
    const redis = await server();
    const t = await table(redis);
    await route(t.strategy, conn('before-1'), [A, B], A);
    await route(t.strategy, conn('before-2'), [A, B], B);
    expect(t.count('store_connected')).toBe(1);

    await redis.stop('SIGKILL');
    await waitFor(() => t.count('store_connected') === 0, { what: 'the table to notice' });
    for (const key of ['during-1', 'during-2', 'contested']) {
      const r = await timed(route(t.strategy, conn(key), [A, B], A));
      expect(r.value.backend).toBe(A);
      expect(r.ms).toBeLessThan(BOUND_MS);
    }
    expect(t.count('store_unavailable')).toBe(3);
    expect(logLines(t.logs, { msg: 'stick table store: lost the connection to Redis; reconnecting (connections go on without it meanwhile)' })).toHaveLength(1);

    // Redis comes back with "contested" already on b, as if another instance had been first.
    const elsewhere = await server();
    await elsewhere.cli('SET', 'tether:contested', 'b', 'PX', '600000');
    await redis.seedFrom(elsewhere);
    await redis.restart();
    await waitFor(async () => (await redis.cli('MGET', 'tether:before-1', 'tether:before-2', 'tether:during-1', 'tether:during-2')) === 'a\nb\na\na', { what: 'the cache to be written back', timeoutMs: 30_000, intervalMs: 100 });
    await waitFor(() => t.count('store_reconnects') === 1 && t.count('store_connected') === 1, { what: 'the reconnect to be counted' });
    // Written back first-writer-wins: contested stays on b, and this instance's cache follows.
    expect(await redis.cli('GET', 'tether:contested')).toBe('b');
    await waitFor(async () => (await route(t.strategy, conn('contested', { dryRun: true }), [A, B], A)).backend === B, { what: 'the cache to take the winner' });
    expect(logLines(t.logs, { msg: 'stick table store reconnected' })[0]).toMatchObject({ data: 'lost: writing this cache back' });
  });

  it('Redis paused (accepts, never answers): each connection waits at most the timeout, counted and logged once', async () => {
    const redis = await server();
    const t = await table(redis);
    process.kill(redis.pid!, 'SIGSTOP');
    try {
      const results = await Promise.all(['slow-1', 'slow-2', 'slow-3'].map((key) => timed(route(t.strategy, conn(key), [A, B], B))));
      for (const r of results) {
        expect(r.value.backend).toBe(B);
        expect(r.ms).toBeGreaterThanOrEqual(TIMEOUT_MS - 5);
        expect(r.ms).toBeLessThan(BOUND_MS);
      }
      expect(t.count('store_timeouts')).toBe(3);
      expect(logLines(t.logs, { msg: 'stick table store: Redis did not answer in time; connections went on with the rest of the chain' })).toHaveLength(1);
    } finally {
      process.kill(redis.pid!, 'SIGCONT');
    }
    // Answering again: the keys learned during the stall reach Redis with the next touches.
    await waitFor(async () => (await redis.cli('MGET', 'tether:slow-1', 'tether:slow-2', 'tether:slow-3')) === 'b\nb\nb', { what: 'the stalled learns in Redis', timeoutMs: 30_000, intervalMs: 100 });
  });

  it('close() ends the connections and timers, also while Redis is away and the client is reconnecting', async () => {
    const redis = await server();
    const before = handles();
    const t = await table(redis);
    await route(t.strategy, conn('leak-check'), [A, B], A);
    await redis.stop();
    await waitFor(() => t.count('store_connected') === 0, { what: 'the disconnect' });
    tables.splice(tables.indexOf(t), 1);
    const closed = await timed(t.close());
    expect(closed.ms).toBeLessThan(3_000);
    await waitFor(() => {
      const now = handles();
      return now.tcp <= before.tcp && now.timers <= before.timers && now;
    }, { what: () => `handles back to ${JSON.stringify(before)}, now ${JSON.stringify(handles())}` });
  });
});

/** Live TCP sockets and timers of this process (what a leak would leave behind). */
function handles(): { tcp: number; timers: number } {
  const info = process.getActiveResourcesInfo();
  return { tcp: info.filter((r) => r === 'TCPSocketWrap' || r === 'TCPWRAP').length, timers: info.filter((r) => r === 'Timeout').length };
}
