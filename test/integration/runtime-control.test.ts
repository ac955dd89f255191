import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MqttClient } from 'mqtt';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { alive, killAll, lines, runTether, startTether, type RunningTether } from '../../cli/test/helpers/cli.ts';
import { closeAllClients, connectClient, disconnect } from '../../cli/test/helpers/mqtt.ts';
import { startHaBrokers, waitForHolder, type HaAedes } from '../harness/ha-aedes.ts';
import { waitFor } from '../harness/poll.ts';

/**
 * Runtime control as an operator runs it: `tether start` (one process, then `--workers 2`) with an
 * admin token over two independent aedes brokers, changed from another process with `tether table
 * set|delete|clear` and `tether backend set NAME weight N`, which send the token. Where a client
 * landed is read from the brokers themselves.
 */

const T = 90_000;
const TOKEN = randomBytes(16).toString('hex');
const dir = mkdtempSync(join(tmpdir(), 'tether-runtime-control-'));
const tokenFile = join(dir, 'admin-token');
writeFileSync(tokenFile, `${TOKEN}\n`, { mode: 0o600 });

afterAll(async () => {
  await closeAllClients();
  await killAll();
  rmSync(dir, { recursive: true, force: true });
});

interface TableJson {
  tables: { name: string; used: number; entries: { key: string; backend: string; use: number }[] }[];
}

interface BackendJson {
  id: string;
  weight: number;
  configWeight: number;
  activeConnections: number;
  workerWeights?: Record<string, number>;
}

describe.each([1, 2])('runtime control with --workers %i', (workers) => {
  let brokers: HaAedes[];
  let tether: RunningTether;

  beforeAll(async () => {
    brokers = await startHaBrokers(2);
    tether = await startTether(['--workers', String(workers), '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0', ...brokers.flatMap((b) => ['--backend', b.spec])], {
      timeoutMs: 30_000,
      // rr: the primary hands connections to the workers in turn, so each worker's share is known.
      env: { TETHER_ADMIN_TOKEN: TOKEN, TETHER_CLUSTER_SCHEDULING: 'rr' },
    });
  }, T);

  afterEach(() => closeAllClients());

  afterAll(async () => {
    await tether?.stop();
    await Promise.all(brokers.map((b) => b.close()));
  });

  /** The CLI against this balancer, with the token from a file (as an operator keeps it). */
  async function cli(args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return runTether([...args, '--admin', tether.admin!, '--token-file', tokenFile]);
  }

  /** Reads go straight to the API (the CLI's own reads are tested in cli/test); edits go through the CLI. */
  async function read<T>(path: string): Promise<T> {
    const res = await fetch(`http://${tether.admin!}${path}`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(res.status).toBe(200);
    return (await res.json()) as T;
  }

  const table = (): Promise<TableJson> => read<TableJson>('/table');
  const backends = async (): Promise<BackendJson[]> => (await read<{ backends: BackendJson[] }>('/backends')).backends;

  /** Connects a persistent client, waits for the broker that holds it, and returns both. */
  async function land(clientId: string): Promise<{ client: MqttClient; broker: string }> {
    const { client } = await connectClient(tether.url, { clientId, clean: false });
    return { client, broker: (await waitForHolder(brokers, clientId)).id };
  }

  /** Disconnects and waits until the balancer counts no live connection. */
  async function leaveAll(clients: readonly MqttClient[]): Promise<void> {
    for (const c of clients) await disconnect(c);
    await waitFor(async () => ((await backends()).every((b) => b.activeConnections === 0) ? true : undefined), { what: 'no live connection left', timeoutMs: 20_000 });
  }

  it('without the token the CLI is refused (401, exit 1) and nothing changes', async () => {
    const r = await runTether(['table', 'set', 'nobody', 'b2', '--admin', tether.admin!]);
    expect(r.code).toBe(1);
    expect(lines(r.stderr)).toEqual([`tether: admin API http://${tether.admin!}/table/entries/nobody answered 401: this admin API needs a token: send Authorization: Bearer TOKEN (tether commands: --token-file FILE or TETHER_ADMIN_TOKEN)`]);
    const wrong = await runTether(['backend', 'list', '--admin', tether.admin!], { env: { TETHER_ADMIN_TOKEN: 'not-the-admin-token-000' } });
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/answered 401: wrong admin token/);
    expect((await table()).tables[0]!.entries.find((e) => e.key === 'nobody')).toBeUndefined();
    // The token is in no line the balancer logged.
    expect(JSON.stringify(tether.logs)).not.toContain(TOKEN);
  }, T);

  it('table set: a client whose key was set to the other broker lands there on its next connection', async () => {
    const first = await land('rc-sensor');
    const other = first.broker === 'b1' ? 'b2' : 'b1';
    await leaveAll([first.client]);
    const set = await cli(['table', 'set', 'rc-sensor', other]);
    expect(set).toMatchObject({ code: 0, stdout: `rc-sensor: now on ${other}\n`, stderr: '' });
    expect((await table()).tables[0]!.entries.find((e) => e.key === 'rc-sensor')).toMatchObject({ backend: other });
    // Every reconnect (with two workers, served by either one) goes to the broker it was set to.
    for (let i = 0; i < workers; i++) {
      const again = await land('rc-sensor');
      expect(again.broker, `reconnect ${i + 1}`).toBe(other);
      await leaveAll([again.client]);
    }
    // A key never seen goes where it was set, too (TETHER_ADMIN_TOKEN instead of --token-file).
    const fresh = await runTether(['table', 'set', 'rc-new', 'b2', '--admin', tether.admin!], { env: { TETHER_ADMIN_TOKEN: TOKEN } });
    expect(fresh.stdout).toBe('rc-new: now on b2\n');
    const landed = await land('rc-new');
    expect(landed.broker).toBe('b2');
    await leaveAll([landed.client]);
  }, T);

  it('table delete forgets a key (exit 1 the second time); table clear --backend forgets only that backend\'s keys', async () => {
    for (const [key, backend] of [['rc-d1', 'b1'], ['rc-d2', 'b1'], ['rc-d3', 'b2']] as const) {
      expect((await cli(['table', 'set', key, backend])).code).toBe(0);
    }
    expect(await cli(['table', 'delete', 'rc-d1'])).toMatchObject({ code: 0, stdout: 'rc-d1: deleted\n' });
    const again = await cli(['table', 'delete', 'rc-d1']);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/answered 404: no table has an entry for "rc-d1"/);
    const keys = async (): Promise<string[]> => (await table()).tables[0]!.entries.map((e) => e.key).filter((k) => k.startsWith('rc-d')).sort();
    expect(await keys()).toEqual(['rc-d2', 'rc-d3']);

    const unknown = await cli(['table', 'clear', '--backend', 'b9']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/answered 404: no backend named "b9"/);
    const cleared = await cli(['table', 'clear', '--backend', 'b1']);
    expect(cleared.code).toBe(0);
    expect(cleared.stdout).toMatch(/^cleared \d+ entr(y|ies) on b1\n$/);
    expect(await keys()).toEqual(['rc-d3']);
    expect((await table()).tables[0]!.entries.every((e) => e.backend !== 'b1')).toBe(true);
    expect((await cli(['table', 'clear'])).stdout).toMatch(/^cleared \d+ entr(y|ies)\n$/);
    expect((await table()).tables[0]!.used).toBe(0);
  }, T);

  it('backend set NAME weight N: least-connections\' spread follows it, on every worker', async () => {
    // 1:1 first: eight new clients, connected one after the other and kept, split 4/4.
    const spread = async (prefix: string): Promise<Record<string, number>> => {
      const held: { client: MqttClient; broker: string }[] = [];
      for (let i = 0; i < 8; i++) held.push(await land(`${prefix}-${i}`));
      const counts: Record<string, number> = { b1: 0, b2: 0 };
      for (const h of held) counts[h.broker]!++;
      await leaveAll(held.map((h) => h.client));
      return counts;
    };
    expect(await spread('rc-even')).toEqual({ b1: 4, b2: 4 });

    expect(await cli(['backend', 'set', 'b1', 'weight', '3'])).toMatchObject({ code: 0, stdout: 'b1: now weight 3\n', stderr: '' });
    const listed = await backends();
    expect(listed.map((b) => [b.id, b.weight, b.configWeight])).toEqual([['b1', 3, 1], ['b2', 1, 1]]);
    expect(listed[0]!.workerWeights).toBeUndefined();
    const text = await cli(['backend', 'list']);
    expect(text.stdout).toMatch(/^b1 .* weight=3 \(config 1\) active=0 source=static$/m);
    expect(await spread('rc-weighted')).toEqual({ b1: 6, b2: 2 });

    expect((await cli(['backend', 'set', 'b1', 'weight', '300'])).code).toBe(2);
    expect((await cli(['backend', 'set', 'b1', 'weight', '1'])).stdout).toBe('b1: now weight 1\n');
  }, T);

  it.runIf(workers === 2)('a weight set through the admin API also holds in a worker started after it', async () => {
    expect((await cli(['backend', 'set', 'b2', 'weight', '7'])).stdout).toBe('b2: now weight 7\n');
    const started = tether.logs.filter((l) => l.msg === 'worker listening');
    const newest = Math.max(...started.map((l) => Number(l.worker)));
    const victim = started.map((l) => Number(l.pid)).filter(alive).at(-1)!;
    process.kill(victim, 'SIGKILL');
    await tether.waitForLog((l) => l.msg === 'worker exited unexpectedly: starting another' && l.pid === victim);
    await tether.waitForLog((l) => l.msg === 'worker listening' && Number(l.worker) > newest);
    // Every worker, the new one included, has weight 7: the merged list shows no disagreement.
    const b2 = (await backends()).find((b) => b.id === 'b2')!;
    expect(b2).toMatchObject({ weight: 7, configWeight: 1 });
    expect(b2.workerWeights).toBeUndefined();
    expect((await cli(['backend', 'set', 'b2', 'weight', '1'])).code).toBe(0);
  }, T);
});
