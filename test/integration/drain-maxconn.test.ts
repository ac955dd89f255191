import { fileURLToPath } from 'node:url';
import { formatHostPort } from '@tether/core';
import type { MqttClient } from 'mqtt';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { startBalancer, stuckTo, type TestBalancer } from '../harness/balancer.ts';
import { HaAedes, startHaBrokers, waitForHolder } from '../harness/ha-aedes.ts';
import { Cleanup, counterChanges, waitFor, waitForLog, within } from '../harness/poll.ts';
import { connectBytes, RawClient } from '../harness/raw-mqtt-client.ts';
import { ClientPool } from '../harness/traffic-mqtt-clients.ts';
import { ProcessGroup } from '../harness/traffic-processes.ts';

/**
 * Operator control of backends on a running balancer: `drain` and `maint` set with the real CLI
 * (`tether backend set`, a separate Node process talking to the admin API) or with a plain POST to
 * the admin API, and per-backend `maxconn` limits. Brokers are independent aedes instances, so a
 * message that arrives proves which broker carried it.
 */

vi.setConfig({ testTimeout: 60_000, hookTimeout: 30_000 });

const TETHER_BIN = fileURLToPath(new URL('../../cli/bin/tether.js', import.meta.url));

const cleanup = new Cleanup();
const clients = new ClientPool();
const tools = new ProcessGroup();
afterEach(async () => {
  await tools.killAll();
  await clients.closeAll();
  await cleanup.run();
});

async function brokers(n: number): Promise<HaAedes[]> {
  return cleanup.add(await startHaBrokers(n), (list) => Promise.all(list.map((b) => b.close())));
}

async function balancer(backends: readonly (string | Record<string, unknown>)[], overrides: Record<string, unknown> = {}): Promise<TestBalancer> {
  return cleanup.add(await startBalancer({ backends, admin: '127.0.0.1:0', ...overrides }), (b) => b.close());
}

const adminOf = (b: TestBalancer): string => formatHostPort(b.server.adminAddress!);

/** Runs the real CLI (this Node 24, cli/bin/tether.js), bounded to 20 s. */
function tether(args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return tools.run(process.execPath, [TETHER_BIN, ...args], 20_000);
}

/** The way the operator sets a state in one test: the CLI, or a POST to the admin API. */
async function setState(via: 'cli' | 'admin', b: TestBalancer, name: string, state: string): Promise<void> {
  if (via === 'cli') {
    const run = await tether(['backend', 'set', name, state, '--admin', adminOf(b)]);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toBe(`${name}: now ${state}\n`);
    return;
  }
  const res = await fetch(`http://${adminOf(b)}/backends/${encodeURIComponent(name)}/state`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ state }),
  });
  expect(res.status).toBe(200);
  expect(await res.json()).toMatchObject({ changed: true, backend: { id: name, state } });
}


async function connect(b: TestBalancer, clientId: string, clean = false): Promise<{ client: MqttClient; sessionPresent: boolean }> {
  const { client, connack } = await clients.connect(b.url, { clientId, clean });
  expect(connack.returnCode, clientId).toBe(0);
  return { client, sessionPresent: connack.sessionPresent };
}

/** A clean DISCONNECT, then waits until the broker has let the client go (so a later `holds` is about a new connection). */
async function leave(client: MqttClient, clientId: string, broker: HaAedes): Promise<void> {
  await clients.disconnect(client);
  await waitFor(() => !broker.holds(clientId), { what: `${broker.id} to let ${clientId} go` });
}

/** `sub` (subscribed first) receives what `pub` publishes: both connections carry traffic. */
async function flows(pub: MqttClient, sub: MqttClient, topic: string): Promise<void> {
  await sub.subscribeAsync(topic, { qos: 1 });
  const payload = `m-${Math.random()}`;
  const got = new Promise<void>((resolve) => {
    const onMessage = (t: string, p: Buffer): void => {
      if (t === topic && p.toString() === payload) {
        sub.off('message', onMessage);
        resolve();
      }
    };
    sub.on('message', onMessage);
  });
  await pub.publishAsync(topic, payload, { qos: 1 });
  await within(got, `a message on ${topic}`);
}

describe.each([
  { via: 'cli', state: 'drain' },
  { via: 'admin', state: 'drain' },
  { via: 'cli', state: 'maint' },
  { via: 'admin', state: 'maint' },
] as const)('backend set to $state via $via', ({ via, state }) => {
  it('takes no new connection (sticky keys re-dispatch, table rewritten), keeps its live ones flowing; ready again takes new ones', async () => {
    const list = await brokers(2);
    const [b1, b2] = list as [HaAedes, HaAedes];
    const bal = await balancer([b1.spec, b2.spec]);
    // Six persistent clients, three per broker (least-connections alternates while all stay).
    const live = new Map<string, MqttClient>();
    for (let i = 0; i < 6; i++) live.set(`op-${i}`, (await connect(bal, `op-${i}`)).client);
    const on = async (broker: HaAedes): Promise<string[]> => {
      const out: string[] = [];
      for (const id of live.keys()) if ((await waitForHolder(list, id)) === broker) out.push(id);
      return out;
    };
    const [sub, pub, leaver] = (await on(b1)) as [string, string, string];
    expect(await on(b2)).toHaveLength(3);
    // One of b1's clients leaves now; its stick entry (b1) stays for its return.
    await leave(live.get(leaver)!, leaver, b1);
    await waitFor(() => bal.server.pool.get('b1')!.activeConnections === 2, { what: 'b1 to count 2 live connections' });
    expect(await stuckTo(bal, leaver)).toBe('b1');

    await setState(via, bal, 'b1', state);
    expect(bal.server.pool.get('b1')!.state).toBe(state);
    const before = bal.server.stats.snapshot();

    // The live connections on b1 are kept and still carry traffic both ways (through b1 only:
    // the brokers share nothing).
    expect(b1.holds(sub) && b1.holds(pub)).toBe(true);
    await flows(live.get(pub)!, live.get(sub)!, `${state}/${via}/live`);

    // The sticky client comes back: re-dispatched to b2, with a new session there, and the table
    // follows. b1 has fewer connections (2 against 3), yet it gets nothing new.
    const back = await connect(bal, leaver);
    expect(back.sessionPresent).toBe(false);
    expect((await waitForHolder(list, leaver)).id).toBe('b2');
    expect(await stuckTo(bal, leaver)).toBe('b2');
    for (const id of ['new-1', 'new-2']) {
      await connect(bal, id, true);
      expect((await waitForHolder(list, id)).id).toBe('b2');
    }
    const changes = counterChanges(before, bal.server.stats.snapshot());
    expect(changes).toMatchObject({ stick_table_redispatches: 1, stick_table_rewrites: 1, connections_spliced: 3 });
    expect(changes.upstream_connect_failures).toBeUndefined();
    // Still live and working after all that.
    await flows(live.get(pub)!, live.get(sub)!, `${state}/${via}/still`);

    await setState(via, bal, 'b1', 'ready');
    // b1 has 2 live connections, b2 has 6: both next new keys go to b1.
    for (const id of ['again-1', 'again-2']) {
      await connect(bal, id, true);
      expect((await waitForHolder(list, id)).id).toBe('b1');
    }
  });
});

describe('a backup backend (backends[].backup, HAProxy\'s backup)', () => {
  it('takes clients only while no other backend can: here, once the only other one is in maintenance', async () => {
    const [main, spare] = (await brokers(2)) as [HaAedes, HaAedes];
    const bal = await balancer([main.spec, { name: 'spare', address: `127.0.0.1:${spare.port}`, backup: true }]);
    for (const id of ['before-1', 'before-2', 'before-3']) await connect(bal, id, true);
    expect(await Promise.all(['before-1', 'before-2', 'before-3'].map((id) => stuckTo(bal, id)))).toEqual(['b1', 'b1', 'b1']);
    await setState('admin', bal, 'b1', 'maint');
    await connect(bal, 'during', true);
    expect(await stuckTo(bal, 'during')).toBe('spare');
    const listed = await tether(['backend', 'list', '--admin', adminOf(bal)]);
    expect(listed.stdout).toMatch(/^spare\s.* source=static backup$/m);
  });
});

describe('tether backend (CLI) against the admin API', () => {
  it('says how many live clients of a backend have a session to keep: those a drain would make lose it on an independent broker', async () => {
    const [b1] = (await brokers(1)) as [HaAedes];
    const bal = await balancer([b1.spec]);
    await connect(bal, 'keeps-a-session', false);
    await connect(bal, 'clean-client', true);
    await waitFor(() => bal.server.pool.get('b1')?.activeConnections === 2, { what: 'both clients spliced' });
    await setState('cli', bal, 'b1', 'drain');
    const listed = await tether(['backend', 'list', '--admin', adminOf(bal)]);
    expect(listed.stdout.trim()).toMatch(new RegExp(`^b1\\s+127\\.0\\.0\\.1:${b1.port}\\s+state=drain admin=drain healthy=true weight=1 active=2 source=static persistent=1$`));
    const json = await tether(['backend', 'list', '--json', '--admin', adminOf(bal)]);
    expect(JSON.parse(json.stdout)).toEqual([expect.objectContaining({ id: 'b1', activeConnections: 2, persistentConnections: 1 })]);
  });

  it('lists the backends with their states, reports "already", and fails clearly for an unknown backend or state', async () => {
    const [b1, b2] = (await brokers(2)) as [HaAedes, HaAedes];
    const bal = await balancer([b1.spec, b2.spec]);
    await setState('cli', bal, 'b2', 'drain');
    const again = await tether(['backend', 'set', 'b2', 'drain', '--admin', adminOf(bal)]);
    expect(again.code).toBe(0);
    expect(again.stdout).toBe('b2: already drain\n');

    const listed = await tether(['backend', 'list', '--admin', adminOf(bal)]);
    expect(listed.code).toBe(0);
    const lines = listed.stdout.trim().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(new RegExp(`^b1\\s+127\\.0\\.0\\.1:${b1.port}\\s+state=ready admin=ready healthy=true weight=1 active=0 source=static$`));
    expect(lines[1]).toMatch(new RegExp(`^b2\\s+127\\.0\\.0\\.1:${b2.port}\\s+state=drain admin=drain healthy=true weight=1 active=0 source=static$`));
    const json = await tether(['backend', 'list', '--json', '--admin', adminOf(bal)]);
    expect((JSON.parse(json.stdout) as { id: string; state: string }[]).map((b) => [b.id, b.state])).toEqual([['b1', 'ready'], ['b2', 'drain']]);

    const unknown = await tether(['backend', 'set', 'nope', 'drain', '--admin', adminOf(bal)]);
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toMatch(/404.*no backend named \\?"nope\\?"/s);
    const badState = await tether(['backend', 'set', 'b1', 'down', '--admin', adminOf(bal)]);
    expect(badState.code).toBe(2);
    expect(badState.stderr).toMatch(/state must be one of ready, drain, maint; got "down"/);
    // Neither failure changed anything.
    expect(bal.server.pool.all().map((b) => b.state)).toEqual(['ready', 'drain']);
  });
});

describe('maxconn', () => {
  it('a backend at its limit is skipped, sticky keys included (next by the chain); all at the limit: CONNACK 3 and a log naming maxconn', async () => {
    const list = await brokers(2);
    const [b1, b2] = list as [HaAedes, HaAedes];
    const limited = (b: HaAedes): Record<string, unknown> => ({ name: b.id, address: `127.0.0.1:${b.port}`, maxconn: 1 });
    const bal = await balancer([limited(b1), limited(b2)]);
    expect(bal.server.pool.all().map((b) => b.maxconn)).toEqual([1, 1]);

    // `k` learns a home, then leaves; its entry stays.
    const k = await connect(bal, 'k');
    const home = await waitForHolder(list, 'k');
    const other = home === b1 ? b2 : b1;
    await leave(k.client, 'k', home);
    await waitFor(() => bal.server.pool.get(home.id)!.activeConnections === 0, { what: `${home.id} to count no connection` });
    // `filler` takes k's home to its limit (the other backend is held out while it connects).
    bal.server.pool.setAdminState(other.id, 'maint');
    const filler = await connect(bal, 'filler', true);
    bal.server.pool.setAdminState(other.id, 'ready');
    expect((await waitForHolder(list, 'filler')).id).toBe(home.id);
    expect(bal.server.pool.get(home.id)!.activeConnections).toBe(1);

    // k comes back: its home is full, so the stick table passes and least-connections picks the other.
    const before = bal.server.stats.snapshot();
    await connect(bal, 'k');
    expect((await waitForHolder(list, 'k')).id).toBe(other.id);
    expect(await stuckTo(bal, 'k')).toBe(other.id);
    expect(counterChanges(before, bal.server.stats.snapshot())).toMatchObject({ stick_table_redispatches: 1, stick_table_rewrites: 1 });

    // Both at the limit: a valid CONNECT is answered "server unavailable" (3), and the log says why.
    const raw = cleanup.add(await RawClient.connect(bal.port), (c) => c.destroy());
    await raw.write(connectBytes('late', 4));
    expect((await raw.waitForPacket('connack')).returnCode).toBe(3);
    await raw.waitClosed();
    const rejected = await waitForLog(bal.logs, { msg: 'connection rejected', reason: 'no_backend' });
    expect(rejected.err).toMatch(/every ready backend is at its maxconn limit/);
    expect(bal.server.stats.get('upstream_connect_failures')).toBe(0);
    expect(b1.holds('late') || b2.holds('late')).toBe(false);

    // A slot frees up: the next client gets it.
    await clients.disconnect(filler.client);
    await waitFor(() => bal.server.pool.get(home.id)!.activeConnections === 0, { what: `${home.id} to free its slot` });
    await connect(bal, 'late', true);
    expect((await waitForHolder(list, 'late')).id).toBe(home.id);
  });

  it('a limited backend next to an unlimited one: the limited one fills to its maxconn, the rest go to the other', async () => {
    const list = await brokers(2);
    const [b1, b2] = list as [HaAedes, HaAedes];
    const bal = await balancer([{ name: 'b1', address: `127.0.0.1:${b1.port}`, maxconn: 2 }, b2.spec]);
    for (let i = 0; i < 8; i++) await connect(bal, `mc-${i}`, true);
    await waitFor(() => b1.connectionCount + b2.connectionCount === 8, { what: 'the brokers to hold 8 connections' });
    expect(bal.server.pool.get('b1')!.activeConnections).toBe(2);
    expect(bal.server.pool.get('b2')!.activeConnections).toBe(6);
    expect(bal.server.stats.get('rejected_no_backend')).toBe(0);
  });
});
