import { createServer, type AddressInfo, type Server } from 'node:net';
import mqttPacket from 'mqtt-packet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { alive, killAll, runTether, startTether, type LogLine, type RunningTether } from '../../cli/test/helpers/cli.ts';
import { closeAllClients, connectClient, disconnect } from '../../cli/test/helpers/mqtt.ts';
import { startHaBrokers, type HaAedes } from '../harness/ha-aedes.ts';
import { waitFor } from '../harness/poll.ts';

/**
 * `tether start --workers 2`, run as a user runs it (a real process tree: the primary and two
 * workers), over two independent aedes brokers in this process. Where each client landed is read
 * from the brokers themselves (their `landings`); which worker served it from the worker's
 * `connection closed` log line (every worker's lines carry `worker`).
 */

const T = 90_000;
const CLIENTS = 24;
const ids = Array.from({ length: CLIENTS }, (_, i) => `cluster-client-${String(i).padStart(2, '0')}`);

let brokers: HaAedes[];
let tether: RunningTether;

beforeAll(async () => {
  brokers = await startHaBrokers(2);
  tether = await startTether(['--workers', '2', '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0', ...brokers.flatMap((b) => ['--backend', b.spec])], {
    timeoutMs: 30_000,
    // Round robin makes "the reconnect was served by the other worker" certain rather than likely.
    env: { TETHER_CLUSTER_SCHEDULING: 'rr' },
  });
}, T);

afterAll(async () => {
  await closeAllClients();
  await killAll();
  await Promise.all(brokers.map((b) => b.close()));
});

/** The broker each client's latest session start reached. */
function lastLanding(clientId: string): string | undefined {
  return brokers.flatMap((b) => b.landings).filter((l) => l.clientId === clientId).at(-1)?.broker;
}

const closedLines = (): LogLine[] => tether.logs.filter((l) => l.msg === 'connection closed');

/** Connects every client in turn (persistent sessions), then disconnects them all; returns client → worker that served it. */
async function round(clients: readonly string[]): Promise<Map<string, number>> {
  const before = closedLines().length;
  for (const clientId of clients) {
    const { client } = await connectClient(tether.url, { clientId, clean: false });
    await waitFor(() => brokers.some((b) => b.holds(clientId)), { what: `a broker to hold ${clientId}` });
    await disconnect(client);
  }
  await waitFor(() => closedLines().length >= before + clients.length, { what: `${clients.length} connection closed lines`, timeoutMs: 20_000 });
  return new Map(closedLines().slice(before).map((l) => [String(l.key), Number(l.worker)]));
}

interface TableJson {
  tables: { name: string; used: number; entries: { key: string; backend: string; use: number }[] }[];
}

async function table(): Promise<TableJson> {
  const r = await runTether(['table', 'show', '--admin', tether.admin!, '--json']);
  expect(r.stderr).toBe('');
  return JSON.parse(r.stdout) as TableJson;
}

describe('tether start --workers 2', () => {
  it('says once that it listens, with the workers, after both workers listen', () => {
    expect(tether.listening).toMatchObject({ workers: 2, scheduling: 'rr' });
    expect(tether.listening.pids).toHaveLength(2);
    expect(tether.logs.filter((l) => l.msg === 'tether listening')).toHaveLength(1);
    expect(tether.logs.filter((l) => l.msg === 'worker listening').map((l) => l.listen).sort()).toEqual([tether.listening.listen, tether.listening.listen]);
  });

  it('both workers serve clients, and a reconnect served by the other worker goes to the same broker', async () => {
    const first = await round(ids);
    expect(new Set(first.values())).toEqual(new Set([1, 2]));
    const landed = new Map(ids.map((id) => [id, lastLanding(id)!]));
    expect(new Set(landed.values())).toEqual(new Set(['b1', 'b2']));

    // One extra connection first, so that the primary's round robin gives each client the other worker.
    await round(['cluster-shift']);
    const second = await round(ids);
    const moved = ids.filter((id) => second.get(id) !== first.get(id));
    expect(moved.length, 'clients served by the other worker on reconnect').toBeGreaterThan(CLIENTS / 4);
    for (const id of ids) expect(lastLanding(id), `${id} reconnected to the broker that has its session`).toBe(landed.get(id));
  }, T);

  it('table show and backend list give the whole balancer: the union of keys, uses and connections summed', async () => {
    const t = await table();
    expect(t.tables).toHaveLength(1);
    const entries = new Map(t.tables[0]!.entries.map((e) => [e.key, e]));
    for (const id of ids) expect(entries.get(id), id).toMatchObject({ backend: lastLanding(id), use: 0 });

    // Two live clients: with round robin, one on each worker.
    const held = [await connectClient(tether.url, { clientId: ids[0]!, clean: false }), await connectClient(tether.url, { clientId: ids[1]!, clean: false })];
    const live = await waitForTable((tb) => ids.slice(0, 2).every((id) => tb.tables[0]!.entries.find((e) => e.key === id)?.use === 1));
    expect(live.tables[0]!.entries.filter((e) => e.use > 0).map((e) => e.key).sort()).toEqual(ids.slice(0, 2));
    // explain is answered by one worker, from the shared table.
    const hex = mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: false, keepalive: 60, clientId: ids[5]! }).toString('hex');
    const explained = JSON.parse((await runTether(['explain', '--admin', tether.admin!, '--hex', hex, '--json'])).stdout) as { backend: string; strategy: string };
    expect(explained).toMatchObject({ backend: lastLanding(ids[5]!), strategy: 'stick-table' });
    const backends = await runTether(['backend', 'list', '--admin', tether.admin!, '--json']);
    const active = (JSON.parse(backends.stdout) as { id: string; activeConnections: number }[]).reduce((n, b) => n + b.activeConnections, 0);
    expect(active).toBe(2);

    // A state set through the admin API reaches every worker.
    const set = await runTether(['backend', 'set', 'b1', 'drain', '--admin', tether.admin!]);
    expect(set.stdout).toBe('b1: now drain\n');
    const drained = JSON.parse((await runTether(['backend', 'list', '--admin', tether.admin!, '--json'])).stdout) as { id: string; state: string; workerStates?: unknown }[];
    expect(drained.find((b) => b.id === 'b1')).toMatchObject({ state: 'drain' });
    expect(drained.find((b) => b.id === 'b1')!.workerStates).toBeUndefined();
    expect((await runTether(['backend', 'set', 'b1', 'ready', '--admin', tether.admin!])).stdout).toBe('b1: now ready\n');
    for (const h of held) await disconnect(h.client);
  }, T);

  it('a worker killed with SIGKILL is replaced, and the new worker knows the table', async () => {
    const [victim] = tether.listening.pids as number[];
    process.kill(victim!, 'SIGKILL');
    await tether.waitForLog((l) => l.msg === 'worker exited unexpectedly: starting another' && l.pid === victim);
    const replacement = await tether.waitForLog((l) => l.msg === 'worker listening' && Number(l.worker) > 2);
    const newWorker = Number(replacement.worker);
    // Every client again: about half are served by the new worker, each on its own broker.
    const served = await round(ids);
    const byNew = ids.filter((id) => served.get(id) === newWorker);
    expect(byNew.length, 'clients served by the restarted worker').toBeGreaterThan(0);
    for (const id of ids) expect(lastLanding(id), `${id} after the restart`).toBe(brokers.flatMap((b) => b.landings).find((l) => l.clientId === id)!.broker);
  }, T);

  it('a backend state set through the admin API also holds in a worker started after it', async () => {
    expect((await runTether(['backend', 'set', 'b2', 'maint', '--admin', tether.admin!])).stdout).toBe('b2: now maint\n');
    const started = tether.logs.filter((l) => l.msg === 'worker listening');
    const newest = Math.max(...started.map((l) => Number(l.worker)));
    const victim = started.map((l) => Number(l.pid)).filter(alive).at(-1)!;
    process.kill(victim, 'SIGKILL');
    await tether.waitForLog((l) => l.msg === 'worker exited unexpectedly: starting another' && l.pid === victim);
    // Workers are numbered in start order: the replacement is the first above every earlier one.
    const replacement = Number((await tether.waitForLog((l) => l.msg === 'worker listening' && Number(l.worker) > newest)).worker);
    // Every worker, the new one included, reports maint: the merged list shows no disagreement.
    const listed = JSON.parse((await runTether(['backend', 'list', '--admin', tether.admin!, '--json'])).stdout) as { id: string; state: string; workerStates?: unknown }[];
    expect(listed.find((b) => b.id === 'b2')).toMatchObject({ state: 'maint' });
    expect(listed.find((b) => b.id === 'b2')!.workerStates).toBeUndefined();
    // New clients (no table entry) go only to b1, whichever worker serves them; some reach the new worker.
    const fresh = Array.from({ length: 8 }, (_, i) => `cluster-maint-${i}`);
    const served = await round(fresh);
    for (const id of fresh) expect(lastLanding(id), id).toBe('b1');
    expect(fresh.filter((id) => served.get(id) === replacement).length, 'clients served by the new worker').toBeGreaterThan(0);
    expect((await runTether(['backend', 'set', 'b2', 'ready', '--admin', tether.admin!])).stdout).toBe('b2: now ready\n');
  }, T);

  it('stops on SIGTERM: every worker closes, then the primary exits 0 and no process is left', async () => {
    const replacement = tether.logs.filter((l) => l.msg === 'worker listening').map((l) => Number(l.pid));
    const pids = [tether.pid, ...replacement];
    expect(await tether.stop('SIGTERM')).toEqual({ code: 0, signal: null });
    expect(tether.logs.filter((l) => l.msg === 'tether stopped').length).toBeGreaterThanOrEqual(3);
    for (const pid of pids) expect(alive(pid), `pid ${pid} is gone`).toBe(false);
  }, T);

  async function waitForTable(ok: (t: TableJson) => boolean): Promise<TableJson> {
    let last: TableJson | undefined;
    for (let i = 0; i < 50; i++) {
      last = await table();
      if (ok(last)) return last;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`table never matched: ${JSON.stringify(last)}`);
  }
});

describe('tether start --workers 2 when a worker cannot start', () => {
  afterAll(() => killAll());

  it('exits non-zero with the worker\'s message when the port is in use', async () => {
    const busy = await holdPort();
    try {
      const r = await runTether(['start', '--workers', '2', '--listen', `127.0.0.1:${busy.port}`, '--backend', 'b=127.0.0.1:1', '--log-level', 'warn'], { timeoutMs: 30_000 });
      expect(r.code).toBe(1);
      expect(r.stderr).toBe(`tether: 127.0.0.1:${busy.port} is already in use; choose another address with --listen (TETHER_LISTEN, config key listen)\n`);
    } finally {
      await new Promise<void>((resolve) => busy.server.close(() => resolve()));
    }
  }, T);

  it('exits non-zero with the worker\'s message when a plugin refuses its options', async () => {
    const r = await runTether(['start', '--workers', '2', '--listen', '127.0.0.1:0', '--backend', 'b=127.0.0.1:1', '--select', 'stick-table', '--log-level', 'warn'], { timeoutMs: 30_000 });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^tether: select: the strategy chain \[stick-table\] can leave a client without a backend/);
  }, T);
});

function holdPort(): Promise<{ server: Server; port: number }> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0 }, () => resolve({ server, port: (server.address() as AddressInfo).port }));
  });
}
