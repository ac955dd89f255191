import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { deadLoopbackPort, killAll, lines, runTether, startTether, type LogLine, type RunningTether } from './helpers/cli.ts';
import { closeAllClients, connectClient, disconnect } from './helpers/mqtt.ts';

/** `tether table show`: the live stick table of a running balancer, like HAProxy's `show table`. */

const T = 60_000;
const THIRTY_MINUTES = 30 * 60 * 1000;

interface Entry {
  key: string;
  backend: string;
  use: number;
  expiresInMs: number;
  hits: number;
  lastSeen: number;
}
interface Tables {
  tables: { name: string; type: string; size: number; used: number; entries: Entry[] }[];
}

const show = (...args: string[]) => runTether(['table', 'show', ...args]);
async function showJson(...args: string[]): Promise<Tables> {
  const r = await show(...args, '--json');
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout) as Tables;
}
const closedLog = (key: string) => (l: LogLine) => l.msg === 'connection closed' && l.key === key;

describe('tether table show against a running balancer', () => {
  let tether: RunningTether;
  let dir: string;

  beforeAll(async () => {
    tether = await startTether(['--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0']);
    dir = mkdtempSync(join(tmpdir(), 'tether-table-'));
  }, T);
  afterEach(() => closeAllClients());
  afterAll(async () => {
    await killAll();
    rmSync(dir, { recursive: true, force: true });
  });

  it('an empty table before any client', async () => {
    const r = await show('--admin', tether.admin!);
    expect(r.code).toBe(0);
    expect(lines(r.stdout)).toEqual(['# table: stick-table, type: string, size:100000, used:0']);
    expect(await showJson('--admin', tether.admin!)).toEqual({ tables: [{ name: 'stick-table', type: 'string', size: 100_000, used: 0, store: 'memory', entries: [] }] });
  }, T);

  it('a connected client: use=1 and the full expiry; after it leaves: use=0 and the idle timer runs', async () => {
    const { client } = await connectClient(tether.url, { clientId: 'meter-7' });
    const connected = (await showJson('--admin', tether.admin!)).tables[0]!;
    expect(connected.used).toBe(1);
    const entry = connected.entries[0]!;
    // Learned, not yet matched: a hit is a reconnect that finds the entry.
    expect(entry).toMatchObject({ key: 'meter-7', use: 1, expiresInMs: THIRTY_MINUTES, hits: 0 });
    expect(entry.backend).toMatch(/^embedded[12]$/);

    await disconnect(client);
    await tether.waitForLog(closedLog('meter-7'));
    const idle = (await showJson('--admin', tether.admin!)).tables[0]!.entries.find((e) => e.key === 'meter-7')!;
    expect(idle).toMatchObject({ key: 'meter-7', use: 0, backend: entry.backend });
    expect(idle.expiresInMs).toBeLessThanOrEqual(THIRTY_MINUTES);
    expect(idle.expiresInMs).toBeGreaterThan(THIRTY_MINUTES - 60_000);

    const text = await show('--admin', tether.admin!);
    const id = entry.backend === 'embedded1' ? 1 : 2;
    expect(lines(text.stdout)).toContainEqual(expect.stringMatching(new RegExp(`^key=meter-7 use=0 exp=\\d+ server_id=${id} server_key=${entry.backend} hits=0$`)));
  }, T);

  it('a client id with a newline stays on one line, quoted, and cannot forge an entry', async () => {
    const evil = 'evil\nkey=forged use=9';
    await connectClient(tether.url, { clientId: evil });
    const text = await show('--admin', tether.admin!);
    const out = lines(text.stdout);
    expect(out.filter((l) => l.startsWith('key=forged'))).toEqual([]);
    expect(out).toContainEqual(expect.stringMatching(/^key="evil\\nkey=forged use=9" use=1 exp=\d+ server_id=[12] server_key=embedded[12] hits=0$/));
    expect((await showJson('--admin', tether.admin!)).tables[0]!.entries.map((e) => e.key)).toContain(evil);
  }, T);

  it('--limit N prints at most N entries; the header still counts them all', async () => {
    await connectClient(tether.url, { clientId: 'limit-a' });
    await connectClient(tether.url, { clientId: 'limit-b' });
    const all = (await showJson('--admin', tether.admin!)).tables[0]!;
    expect(all.used).toBeGreaterThanOrEqual(2);
    const limited = await show('--admin', tether.admin!, '--limit', '1');
    const out = lines(limited.stdout);
    expect(out[0]).toBe(`# table: stick-table, type: string, size:100000, used:${all.used}`);
    expect(out.filter((l) => l.startsWith('key='))).toHaveLength(1);
    expect((await showJson('--admin', tether.admin!, '--limit', '1')).tables[0]!.entries).toHaveLength(1);
  }, T);

  it('-c FILE reads the admin address from the config file; --admin also takes a URL', async () => {
    await connectClient(tether.url, { clientId: 'via-file' });
    const file = join(dir, 'tether.yaml');
    writeFileSync(file, `# the running balancer's admin API\nadmin: ${tether.admin}\n`);
    const viaFile = await show('-c', file);
    const viaFlag = await show('--admin', tether.admin!);
    const viaUrl = await show('--admin', `http://${tether.admin}/`);
    expect(viaFile.code).toBe(0);
    expect(viaFile.stdout).toMatch(/^key=via-file use=1 /m);
    const strip = (s: string) => s.replace(/exp=\d+/g, 'exp=N');
    expect(strip(viaFile.stdout)).toBe(strip(viaFlag.stdout));
    expect(strip(viaUrl.stdout)).toBe(strip(viaFlag.stdout));
  }, T);
});

describe('tether table show: a select chain without a table', () => {
  afterAll(() => killAll());

  it('says so', async () => {
    const tether = await startTether(['--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0', '--select', 'least-connections']);
    const r = await show('--admin', tether.admin!);
    expect(r.code).toBe(0);
    expect(lines(r.stdout)).toEqual(['# no strategy in the select chain keeps a table']);
    expect(await showJson('--admin', tether.admin!)).toEqual({ tables: [] });
  }, T);
});

describe('tether table show: errors', () => {
  afterAll(() => killAll());

  it('no admin address anywhere: a usage error naming the options', async () => {
    const r = await show();
    expect(r.code).toBe(2);
    expect(lines(r.stderr)).toEqual(['tether: no admin address: pass --admin HOST:PORT, or -c FILE with an "admin" address (TETHER_ADMIN)']);
    expect(r.stdout).toBe('');
  }, T);

  it('nothing listening at --admin: one line saying so', async () => {
    const admin = `127.0.0.1:${await deadLoopbackPort()}`;
    const r = await show('--admin', admin);
    expect(r.code).not.toBe(0);
    expect(lines(r.stderr)).toEqual([`tether: cannot reach the admin API at http://${admin}/table (ECONNREFUSED); is tether running with --admin?`]);
  }, T);

  it('usage errors exit 2', async () => {
    const noShow = await runTether(['table']);
    expect(noShow.code).toBe(2);
    expect(lines(noShow.stderr).slice(0, 2)).toEqual(['tether: table needs a subcommand: show, set, delete or clear', 'Usage: tether table <show|set|delete|clear> [options]']);
    const badLimit = await show('--admin', '127.0.0.1:9', '--limit', 'all');
    expect(badLimit.code).toBe(2);
    expect(lines(badLimit.stderr)).toEqual(['tether: --limit must be a whole number']);
  }, T);
});
