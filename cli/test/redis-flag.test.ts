import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { skipReason } from '../../test/harness/binaries.ts';
import { waitFor } from '../../test/harness/poll.ts';
import { RedisServer } from '../../test/harness/redis.ts';
import { killAll, lines, runTether, startTether, type RunningTether } from './helpers/cli.ts';
import { closeAllClients, connectClient, disconnect } from './helpers/mqtt.ts';

/**
 * `tether start --redis URL` as a user runs it: the default chain's stick table on a real
 * redis-server, `tether table show` reading the shared entries in pages, and the same with
 * `--workers 2` (every worker has its own connection and cache; the admin view is not doubled).
 */

const T = 90_000;
const missing = skipReason('redis-server') + skipReason('redis-cli');
const SECRET = 'cli-secret-3b1f';

let redis: RedisServer;
beforeAll(async () => {
  if (!missing) redis = await RedisServer.start({ password: SECRET });
}, T);
afterEach(async () => {
  await closeAllClients();
  await killAll();
});
afterAll(() => redis?.close());

interface TableJson {
  tables: { name: string; used: number; store?: string; cursor?: string; entries: { key: string; backend: string; use: number }[] }[];
}

async function tableJson(admin: string, ...args: string[]): Promise<TableJson> {
  const r = await runTether(['table', 'show', '--admin', admin, '--json', ...args]);
  expect(r.stderr).toBe('');
  return JSON.parse(r.stdout) as TableJson;
}

async function connectAll(tether: RunningTether, ids: readonly string[]): Promise<void> {
  for (const clientId of ids) {
    const { client } = await connectClient(tether.url, { clientId, clean: false });
    await disconnect(client);
  }
}

describe.skipIf(missing !== '')(`tether start --redis${missing}`, () => {
  it('puts the default stick table on Redis; table show reads the shared entries in pages and names the store, never the password', async () => {
    const tether = await startTether(['--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0', '--redis', redis.url]);
    await tether.waitForLog((l) => l.msg === 'stick table store connected');
    const ids = Array.from({ length: 5 }, (_, i) => `flag-client-${i}`);
    await connectAll(tether, ids);
    for (const id of ids) expect(await redis.cli('GET', `tether:${id}`)).toMatch(/^embedded[12]$/);

    const store = `redis redis://127.0.0.1:${redis.port}/0 prefix tether: (connected)`;
    const first = await runTether(['table', 'show', '--admin', tether.admin!, '--limit', '2']);
    const out = lines(first.stdout);
    expect(out[0]).toBe(`# table: stick-table, type: string, size:100000, used:5, store: ${store}`);
    expect(out.filter((l) => l.startsWith('key='))).toHaveLength(2);
    const more = /^# more entries: tether table show --cursor (\S+) \(or --all\)$/.exec(out.at(-1)!);
    expect(more).not.toBeNull();
    const next = await tableJson(tether.admin!, '--limit', '2', '--cursor', more![1]!);
    expect(next.tables[0]!.entries).toHaveLength(2);

    const all = await tableJson(tether.admin!, '--all', '--limit', '2');
    expect(all.tables[0]!.entries.map((e) => e.key).sort()).toEqual(ids);
    expect(all.tables[0]!.store).toBe(store);
    expect((await tableJson(tether.admin!, '--key', ids[3]!)).tables[0]!.entries).toEqual([expect.objectContaining({ key: ids[3], use: 0 })]);

    expect(JSON.stringify(tether.logs) + tether.stderr()).not.toContain(SECRET);
    expect(await tether.stop()).toEqual({ code: 0, signal: null });
  }, T);

  it('a restarted balancer routes every known key to its broker again, from Redis', async () => {
    const ids = Array.from({ length: 6 }, (_, i) => `restart-client-${i}`);
    const before = await startTether(['--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0', '--redis', redis.url, '--backend', 'b1=127.0.0.1:1', '--backend', 'b2=127.0.0.1:2']);
    // No broker is needed to see the decision: explain asks the running balancer.
    for (const [i, id] of ids.entries()) await redis.cli('SET', `tether:${id}`, i % 2 ? 'b1' : 'b2', 'PX', '600000');
    await before.stop();
    const after = await startTether(['--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0', '--redis', redis.url, '--backend', 'b1=127.0.0.1:1', '--backend', 'b2=127.0.0.1:2']);
    for (const [i, id] of ids.entries()) {
      expect(await explain(after, id), id).toMatchObject({ backend: i % 2 ? 'b1' : 'b2', strategy: 'stick-table' });
    }
    // explain only reads: nothing was claimed for a key it was asked about.
    expect((await explain(after, 'never-seen')).strategy).toBe('least-connections');
    expect(await redis.cli('EXISTS', 'tether:never-seen')).toBe('0');
  }, T);

  it('with --workers 2: each worker reaches Redis, a key learned through one is followed by the other, the admin view counts each entry once', async () => {
    const tether = await startTether(['--workers', '2', '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0', '--redis', redis.url.replace('/0', '/1')], {
      timeoutMs: 30_000,
      env: { TETHER_CLUSTER_SCHEDULING: 'rr' },
    });
    await waitFor(() => tether.logs.filter((l) => l.msg === 'stick table store connected').length >= 2, { what: 'both workers connected to Redis' });
    const ids = Array.from({ length: 8 }, (_, i) => `worker-client-${i}`);
    await connectAll(tether, ids);
    // Round robin: after one extra connection, every client's second connection goes to the other
    // worker, which has not seen the key and asks Redis.
    await connectAll(tether, ['worker-shift']);
    await connectAll(tether, ids);
    const closed = () => tether.logs.filter((l) => l.msg === 'connection closed');
    await waitFor(() => closed().length >= 17, { what: '17 connection closed lines' });
    for (const id of ids) {
      const backends = new Set(closed().filter((l) => l.key === id).map((l) => l.backend));
      expect([...backends], id).toHaveLength(1);
      const workers = new Set(closed().filter((l) => l.key === id).map((l) => l.worker));
      expect(workers.size, `${id} served by both workers`).toBe(2);
    }
    const held = await connectClient(tether.url, { clientId: ids[0]!, clean: false });
    const view = await waitFor(async () => {
      const t = await tableJson(tether.admin!, '--all');
      return t.tables[0]!.entries.find((e) => e.key === ids[0])?.use === 1 && t;
    }, { what: 'the live connection in the merged view' });
    const keys = view.tables[0]!.entries.map((e) => e.key);
    expect(keys.sort()).toEqual([...ids, 'worker-shift'].sort());
    expect(new Set(keys).size).toBe(keys.length);
    await disconnect(held.client);
    expect(await tether.stop()).toEqual({ code: 0, signal: null });
  }, T);

  it('is refused with a clear message when it cannot apply', async () => {
    const bad = await runTether(['validate', '--redis', 'http://127.0.0.1:6379']);
    expect({ code: bad.code, stderr: bad.stderr }).toEqual({ code: 2, stderr: 'tether: --redis must be a URL such as redis://127.0.0.1:6379 (rediss://… for TLS; redis://user:password@host:port/db)\n' });
    const noTable = await runTether(['validate', '--redis', redis.url, '--select', 'least-connections']);
    expect({ code: noTable.code, stderr: noTable.stderr }).toEqual({ code: 2, stderr: 'tether: --redis puts the stick table on Redis, but the select chain [least-connections] has no stick-table\n' });
    // validate connects and closes again: it exits.
    const ok = await runTether(['validate', '--redis', redis.url]);
    expect(ok.code).toBe(0);
    expect(ok.stdout + ok.stderr).not.toContain(SECRET);
  }, T);
});

/** What the running balancer would do with a CONNECT of `clientId` (the admin API's explain, as `tether explain --admin` asks it). */
async function explain(tether: RunningTether, clientId: string): Promise<{ backend: string; strategy: string }> {
  const res = await fetch(`http://${tether.admin!}/explain`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ hex: connectHex(clientId) }) });
  return (await res.json()) as { backend: string; strategy: string };
}

/** An MQTT 3.1.1 CONNECT (persistent session) for `clientId`, as hex. */
function connectHex(clientId: string): string {
  const id = Buffer.from(clientId);
  const variable = Buffer.from([0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x04, 0x00, 0x00, 0x3c]);
  const payload = Buffer.concat([Buffer.from([id.length >> 8, id.length & 0xff]), id]);
  const body = Buffer.concat([variable, payload]);
  return Buffer.concat([Buffer.from([0x10, body.length]), body]).toString('hex');
}
