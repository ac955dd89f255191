import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { killAll, runTether, startTether, type RunningTether } from '../../cli/test/helpers/cli.ts';
import { closeAllClients, connectClient, disconnect } from '../../cli/test/helpers/mqtt.ts';
import { startHaBrokers, waitForHolder, type HaAedes } from '../harness/ha-aedes.ts';
import { skipReason } from '../harness/binaries.ts';
import { waitFor } from '../harness/poll.ts';
import { RedisServer } from '../harness/redis.ts';

/**
 * Live reload as an operator does it, on real `tether start` processes: edit the file, then
 * `kill -HUP`, `tether reload`, or nothing at all with `--watch`; `tether status` says what runs.
 */

const T = 90_000;
let brokers: HaAedes[];
let dir: string;

beforeAll(async () => {
  brokers = await startHaBrokers(3);
  dir = mkdtempSync(join(tmpdir(), 'tether-reload-process-'));
});

afterEach(async () => {
  await closeAllClients();
  await killAll();
});

afterAll(async () => {
  await Promise.all(brokers.map((b) => b.close()));
  rmSync(dir, { recursive: true, force: true });
});

const backend = (b: HaAedes) => ({ name: b.id, address: `127.0.0.1:${b.port}` });

function configFile(name: string, config: Record<string, unknown>): { file: string; write(c: Record<string, unknown>): void } {
  const file = join(dir, name);
  const write = (c: Record<string, unknown>): void => writeFileSync(file, YAML.stringify({ listen: '127.0.0.1:0', admin: '127.0.0.1:0', ...c }));
  write(config);
  return { file, write };
}

const reload = (tether: RunningTether, ...extra: string[]) => runTether(['reload', '--admin', tether.admin!, ...extra]);
const status = async (tether: RunningTether) => JSON.parse((await runTether(['status', '--admin', tether.admin!, '--json'])).stdout) as Record<string, unknown>;

describe('tether start -c FILE, reloaded', () => {
  it('SIGHUP applies the edited file in place; tether status shows the generation and the file', async () => {
    const [b1, b2] = brokers as [HaAedes, HaAedes];
    const { file, write } = configFile('sighup.yaml', { backends: [backend(b1)] });
    const tether = await startTether(['-c', file]);
    const kept = await connectClient(tether.url, { clientId: 'kept' });
    write({ backends: [backend(b2)] });
    process.kill(tether.pid, 'SIGHUP');
    const line = await tether.waitForLog((l) => l.msg === 'configuration reloaded');
    expect(line).toMatchObject({ generation: 2, trigger: 'SIGHUP' });
    expect(line.changes).toEqual(expect.arrayContaining([`backend added: b2=127.0.0.1:${b2.port}`, 'backend removed: b1 (1 live connections stay until they close)']));
    await connectClient(tether.url, { clientId: 'after-hup' });
    expect((await waitForHolder(brokers, 'after-hup')).id).toBe('b2');
    expect(kept.client.connected).toBe(true);
    expect(await status(tether)).toMatchObject({ generation: 2, trigger: 'SIGHUP', file, lastFailure: null, pid: tether.pid });
    expect(tether.child.exitCode).toBeNull();
    expect((await tether.stop()).code).toBe(0);
  }, T);

  it('tether reload prints what changed; a bad file exits 1 with every error, and the balancer runs on', async () => {
    const [b1, b2] = brokers as [HaAedes, HaAedes];
    const { file, write } = configFile('cli.yaml', { backends: [backend(b1)] });
    const tether = await startTether(['-c', file]);
    write({ backends: [backend(b1), backend(b2)], retries: 3 });
    const ok = await reload(tether);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain('reloaded: generation 2 is running');
    expect(ok.stdout).toContain('retries: 1 → 3');
    expect(ok.stdout).toContain(`backend added: b2=127.0.0.1:${b2.port}`);

    write({ backends: [{ name: 'broken', address: 'nowhere' }], select: ['no-such-strategy', 'least-connections'] });
    const bad = await reload(tether);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('reload failed: generation 2 keeps running');
    expect(bad.stderr).toMatch(/error: .*backends: \[0\]\.address/);
    expect(await status(tether)).toMatchObject({ generation: 2, lastFailure: { errors: expect.any(Array) } });
    const { client } = await connectClient(tether.url, { clientId: 'still-fine' });
    await disconnect(client);
    const json = JSON.parse((await reload(tether, '--json')).stdout) as { ok: boolean; errors: string[] };
    expect(json.ok).toBe(false);
    expect(json.errors.length).toBeGreaterThan(0);
    expect((await tether.stop()).code).toBe(0);
  }, T);

  it('--watch reloads when the file changes', async () => {
    const [b1, , b3] = brokers as [HaAedes, HaAedes, HaAedes];
    const { file, write } = configFile('watched.yaml', { backends: [backend(b1)] });
    const tether = await startTether(['-c', file, '--watch']);
    await tether.waitForLog((l) => l.msg === 'watching the configuration file: a change reloads it');
    write({ backends: [backend(b3)] });
    const line = await tether.waitForLog((l) => l.msg === 'configuration reloaded');
    expect(line).toMatchObject({ generation: 2, trigger: 'watch' });
    await connectClient(tether.url, { clientId: 'watched' });
    expect((await waitForHolder(brokers, 'watched')).id).toBe('b3');
    expect((await tether.stop()).code).toBe(0);
  }, T);

  it('--watch without -c FILE is a usage error', async () => {
    const r = await runTether(['start', '--watch', '--listen', '127.0.0.1:0']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--watch watches the configuration file: give it with -c FILE');
  });
});

describe('tether start --workers 2 -c FILE, reloaded', () => {
  it('every worker applies the reload and says so; status lists each worker\'s generation; a refused file changes no worker', async () => {
    const [b1, b2] = brokers as [HaAedes, HaAedes];
    const { file, write } = configFile('workers.yaml', { backends: [backend(b1)], workers: 2 });
    const tether = await startTether(['-c', file], { timeoutMs: 30_000 });
    write({ backends: [backend(b2)], workers: 2 });
    process.kill(tether.pid, 'SIGHUP');
    const line = await tether.waitForLog((l) => l.msg === 'configuration reloaded by every worker', 30_000);
    expect(line).toMatchObject({ generation: 2, trigger: 'SIGHUP', workers: 2 });
    const workers = (await status(tether)).workers as { generation: number }[];
    expect(workers.map((w) => w.generation)).toEqual([2, 2]);
    for (let i = 0; i < 6; i++) {
      const { client } = await connectClient(tether.url, { clientId: `w-${i}` });
      expect((await waitForHolder(brokers, `w-${i}`)).id).toBe('b2');
      await disconnect(client);
    }

    write({ backends: [backend(b1)], workers: 2, select: [{ use: 'stick-table', options: { size: 0 } }, 'least-connections'] });
    const bad = await reload(tether);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/error: worker \d+: plugin "stick-table": invalid options/);
    expect(((await status(tether)).workers as { generation: number }[]).map((w) => w.generation)).toEqual([2, 2]);

    write({ backends: [backend(b1)], workers: 3 });
    const restart = await reload(tether);
    expect(restart.code).toBe(0);
    expect(restart.stdout).toContain('needs a restart (running value kept): workers: 2 → 3');
    await waitFor(async () => (await status(tether)).generation === 3, { what: 'generation 3' });
    expect((await tether.stop()).code).toBe(0);
  }, T);
});

const noRedis = skipReason('redis-server');

describe.skipIf(noRedis !== '')(`tether start --redis URL -c FILE, reloaded${noRedis}`, () => {
  it('the stick table stays on Redis through a reload that changes its options: keys learned before still route', async () => {
    const redis = await RedisServer.start();
    try {
      const [b1, b2] = brokers as [HaAedes, HaAedes];
      const { file, write } = configFile('redis.yaml', { backends: [backend(b1), backend(b2)] });
      const tether = await startTether(['-c', file, '--redis', redis.url]);
      const homes = new Map<string, string>();
      for (let i = 0; i < 6; i++) {
        const { client } = await connectClient(tether.url, { clientId: `r-${i}`, clean: false });
        homes.set(`r-${i}`, (await waitForHolder(brokers, `r-${i}`)).id);
        await disconnect(client);
      }
      // --redis applies to the chain of the file as it is now, also after the reload.
      write({ backends: [backend(b1), backend(b2)], select: [{ use: 'stick-table', options: { size: 5000 } }, 'round-robin'] });
      const ok = await reload(tether);
      expect(ok.code, ok.stderr).toBe(0);
      const shown = await runTether(['table', 'show', '--admin', tether.admin!, '--all']);
      expect(shown.stdout).toMatch(/^# table: stick-table, type: string, size:5000, used:\d+, store: redis /m);
      for (const [clientId, home] of homes) {
        const { client } = await connectClient(tether.url, { clientId, clean: false });
        expect((await waitForHolder(brokers, clientId)).id, clientId).toBe(home);
        await disconnect(client);
      }
      expect((await tether.stop()).code).toBe(0);
    } finally {
      await redis.close();
    }
  }, T);
});
