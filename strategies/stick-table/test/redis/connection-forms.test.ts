import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { skipReason } from '../../../../test/harness/binaries.ts';
import { waitFor } from '../../../../test/harness/poll.ts';
import { RedisCluster, RedisSentinel, RedisServer } from '../../../../test/harness/redis.ts';
import { createTestPki, type TestPki } from '../../../../test/harness/tls-certs.ts';
import { A, B, C, conn, openTable, route, type TestTable } from './helpers.ts';

/**
 * The ways to reach Redis that production uses, each against real servers started here: a
 * password (in the URL or from TETHER_REDIS_PASSWORD), TLS with a CA and a client certificate
 * (made with openssl for the test), a Cluster of three masters (redis-cli --cluster create), and
 * a master with a replica under Sentinel, failed over while the table runs.
 */

const missing = skipReason('redis-server') + skipReason('redis-cli') + skipReason('openssl');
const SECRET = 'pw-7f3a9c-not-for-logs';

const tables: TestTable[] = [];
afterEach(async () => {
  await Promise.all(tables.splice(0).map((t) => t.close()));
});

async function table(store: Record<string, unknown>): Promise<TestTable> {
  const t = await openTable({ timeout: '500ms', ...store, type: 'redis' }, { expire: '10m' });
  tables.push(t);
  return t;
}

describe.skipIf(missing !== '')(`stick table on Redis: password, TLS, Cluster, Sentinel${missing}`, { timeout: 60_000 }, () => {
  describe('a password-protected Redis', () => {
    let redis: RedisServer;
    beforeAll(async () => {
      redis = await RedisServer.start({ password: SECRET });
    });
    afterAll(() => redis.close());

    it('works with the password in the URL, and never logs it', async () => {
      const t = await table({ url: redis.url, prefix: 'pw1:' });
      await route(t.strategy, conn('locked'), [A, B], B);
      expect(await redis.cli('GET', 'pw1:locked')).toBe('b');
      expect((await t.view()).store).toBe(`redis redis://127.0.0.1:${redis.port}/0 prefix pw1: (connected)`);
      expect(JSON.stringify(t.logs)).not.toContain(SECRET);
      expect(t.logs.some((l) => l.msg === 'stick table store connected')).toBe(true);
    });

    it('takes the password from TETHER_REDIS_PASSWORD when the URL has none', async () => {
      process.env.TETHER_REDIS_PASSWORD = SECRET;
      let t: TestTable;
      try {
        t = await table({ url: `redis://127.0.0.1:${redis.port}/0`, prefix: 'pw2:' });
      } finally {
        delete process.env.TETHER_REDIS_PASSWORD;
      }
      await route(t.strategy, conn('from-env'), [A, B], A);
      expect(await redis.cli('GET', 'pw2:from-env')).toBe('a');
    });

    it('a wrong password: the table runs without Redis and says why, without the password', async () => {
      const t = await table({ url: `redis://:wrong-${SECRET}@127.0.0.1:${redis.port}/0`, prefix: 'pw3:' });
      expect((await route(t.strategy, conn('refused'), [A, B], A)).by).toBe('chain');
      expect(t.count('store_unavailable')).toBe(1);
      await waitFor(() => t.logs.find((l) => /cannot reach Redis/.test(String(l.msg))), { what: 'the connection warning' });
      expect(JSON.stringify(t.logs)).not.toContain(SECRET);
    });
  });

  describe('TLS (rediss://) with a client certificate', () => {
    let pki: TestPki;
    let redis: RedisServer;
    beforeAll(async () => {
      pki = await createTestPki();
      redis = await RedisServer.start({ tls: { cert: pki.alpha.cert, key: pki.alpha.key, ca: pki.ca.cert, clientCerts: true, client: pki.device1 } });
    });
    afterAll(async () => {
      await redis?.close();
      pki?.remove();
    });

    it('connects with the CA and the client certificate, and claims keys', async () => {
      const t = await table({ url: `rediss://127.0.0.1:${redis.port}/0`, prefix: 'tls1:', tls: { ca: pki.ca.cert, cert: pki.tetherClient.cert, key: pki.tetherClient.key } });
      await route(t.strategy, conn('encrypted'), [A, B], B);
      expect(await redis.cli('GET', 'tls1:encrypted')).toBe('b');
      expect((await t.view()).store).toBe(`redis rediss://127.0.0.1:${redis.port}/0 prefix tls1: (connected)`);
    });

    it('refuses a server whose certificate does not chain to the configured CA', async () => {
      const t = await table({ url: `rediss://127.0.0.1:${redis.port}/0`, prefix: 'tls2:', tls: { ca: pki.otherCa.cert, cert: pki.tetherClient.cert, key: pki.tetherClient.key } });
      expect((await route(t.strategy, conn('untrusted'), [A, B], A)).by).toBe('chain');
      await waitFor(() => t.logs.find((l) => /cannot reach Redis/.test(String(l.msg)) && /certificate/i.test(String(l.err))), { what: 'a certificate error in the log' });
      expect(await redis.cli('EXISTS', 'tls2:untrusted')).toBe('0');
    });
  });

  describe('a Redis Cluster of three masters', () => {
    let cluster: RedisCluster;
    beforeAll(async () => {
      cluster = await RedisCluster.start(3);
    }, 60_000);
    afterAll(() => cluster?.close());

    it('keys spread over the nodes; a second instance follows every claim; views page across the nodes; moves are heard', async () => {
      const first = await table({ nodes: cluster.addresses, prefix: 'cl:' });
      const second = await table({ nodes: cluster.addresses, prefix: 'cl:' });
      const keys = Array.from({ length: 60 }, (_, i) => `cluster-client-${i}`);
      for (const [i, key] of keys.entries()) await route(first.strategy, conn(key), [A, B], i % 2 ? A : B);
      // Every master holds some of them.
      const perNode = await Promise.all(cluster.nodes.map((n) => n.cli('DBSIZE')));
      expect(perNode.filter((n) => Number(n) > 0)).toHaveLength(3);
      for (const [i, key] of keys.entries()) {
        expect(await route(second.strategy, conn(key), [A, B], i % 2 ? B : A)).toEqual({ backend: i % 2 ? A : B, by: 'redis', remembered: true });
      }
      const seen = new Set<string>();
      let cursor: string | undefined;
      for (let pages = 0; pages < 20; pages++) {
        const page = await first.view({ limit: 25, ...(cursor ? { cursor } : {}) });
        for (const e of page.entries) seen.add(e.key);
        cursor = page.cursor;
        if (!cursor) break;
      }
      expect([...seen].sort()).toEqual([...keys].sort());
      // b is unavailable to the second instance: it moves a key; the first instance's cache hears it.
      const moved = keys[0]!;
      expect((await route(second.strategy, conn(moved), [A, C], C)).backend).toBe(C);
      await waitFor(async () => (await route(first.strategy, conn(moved, { dryRun: true }), [A, B, C], A)).backend === C, { what: 'the move to reach the first instance' });
    });
  });

  describe('a master and a replica under Sentinel', () => {
    let master: RedisServer;
    let replica: RedisServer;
    let sentinel: RedisSentinel;
    beforeAll(async () => {
      master = await RedisServer.start();
      replica = await RedisServer.start({ args: ['--replicaof', '127.0.0.1', String(master.port)] });
      sentinel = await RedisSentinel.start(master);
      await waitFor(async () => /master_link_status:up/.test(await replica.cli('INFO', 'replication')), { what: 'the replica to sync' });
    }, 60_000);
    afterAll(async () => {
      await sentinel?.close();
      await replica?.close();
      await master?.close();
    });

    it('finds the master through the sentinel, and follows a failover to the replica', async () => {
      const t = await table({ sentinels: [sentinel.address], name: 'mymaster', prefix: 'st:' });
      await route(t.strategy, conn('before-failover'), [A, B], B);
      expect(await master.cli('GET', 'st:before-failover')).toBe('b');
      expect((await t.view()).store).toBe(`redis sentinel mymaster@${sentinel.address}/0 prefix st: (connected)`);
      await waitFor(async () => (await replica.cli('GET', 'st:before-failover')) === 'b', { what: 'the key on the replica' });

      await master.stop('SIGKILL');
      await waitFor(async () => (await sentinel.master()) === `127.0.0.1:${replica.port}`, { what: 'the sentinel to promote the replica', timeoutMs: 30_000 });
      // The table reconnects to the new master (the one it learned before is there) and claims there.
      await waitFor(() => t.count('store_reconnects') >= 1 && t.count('store_connected') === 1, { what: 'the table to reconnect', timeoutMs: 30_000 });
      let attempt = 0;
      await waitFor(async () => {
        const key = `after-failover-${++attempt}`;
        await route(t.strategy, conn(key), [A, B], A);
        return (await replica.cli('GET', `st:${key}`)) === 'a';
      }, { what: () => `a claim on the new master; logs: ${JSON.stringify(t.logs.slice(-4))}`, timeoutMs: 30_000, intervalMs: 200 });
      expect(await route(t.strategy, conn('before-failover', { dryRun: true }), [A, B], A)).toMatchObject({ backend: B });
      const other = await table({ sentinels: [sentinel.address], name: 'mymaster', prefix: 'st:' });
      expect(await route(other.strategy, conn('before-failover'), [A, B], A)).toEqual({ backend: B, by: 'redis', remembered: true });
    });
  });
});
