import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { killAll, lines, runTether, STACK_TRACE, startTether, type RunningTether } from './helpers/cli.ts';

/**
 * Who may use the admin API, as a user meets it with `tether start` and the admin commands: off
 * loopback only with a token (refused before anything is bound), a token on loopback when one is
 * set, and the ways the CLI finds the token (--token-file, TETHER_ADMIN_TOKEN, -c FILE).
 */

const T = 60_000;
const TOKEN = 'cli-admin-token-0123456789abcdef';
let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'tether-admin-access-'));
});
afterAll(async () => {
  await killAll();
  rmSync(dir, { recursive: true, force: true });
});

const REFUSAL = /^tether: invalid configuration:\n {2}the admin API address (\S+) is not a loopback address and no admin token is set: anyone who can reach it could drain backends and rewrite the stick table\. Set a token with admin\.token or admin\.tokenFile \(TETHER_ADMIN_TOKEN, TETHER_ADMIN_TOKEN_FILE\), or keep the admin API on 127\.0\.0\.1 \(--admin, TETHER_ADMIN, config key admin\.listen\)\n$/;

describe('tether start with the admin API off loopback and no token', () => {
  let held: Server;
  let port: number;
  beforeAll(async () => {
    // A loopback port this test holds: binding 0.0.0.0 on it would fail with "already in use", so
    // the refusal below can only come from the check that runs before any bind.
    held = createServer();
    await new Promise<void>((resolve) => held.listen({ host: '127.0.0.1', port: 0 }, resolve));
    port = (held.address() as { port: number }).port;
  });
  afterAll(() => new Promise<void>((resolve) => held.close(() => resolve())));

  it.each([['1'], ['2']])('refuses before binding anything (--workers %s): exit 1, the message naming the options, no log line', async (workers) => {
    const r = await runTether(['start', '--listen', '127.0.0.1:0', '--admin', `0.0.0.0:${port}`, '--workers', workers]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(REFUSAL);
    expect(r.stderr).toContain(`0.0.0.0:${port}`);
    expect(r.stderr).not.toMatch(STACK_TRACE);
    // No embedded broker, no worker, no listener: nothing was started, so nothing was logged.
    expect(r.stdout).toBe('');
  }, T);

  it('the same from a config file (admin: "[::]:PORT") and for tether validate', async () => {
    const file = join(dir, 'open-admin.yaml');
    writeFileSync(file, `listen: 127.0.0.1:0\nadmin: "[::]:${port}"\n`);
    for (const command of ['start', 'validate']) {
      const r = await runTether([command, '-c', file]);
      expect(r.code, command).toBe(1);
      expect(r.stderr.replace(` in ${file}`, '')).toMatch(REFUSAL);
      expect(r.stdout).toBe('');
    }
  }, T);
});

describe('a token on loopback', () => {
  let tether: RunningTether;
  let tokenFile: string;
  beforeAll(async () => {
    tokenFile = join(dir, 'token');
    writeFileSync(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
    tether = await startTether(['--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0'], { env: { TETHER_ADMIN_TOKEN_FILE: tokenFile } });
  }, T);
  afterAll(() => tether?.stop());

  it('every admin command needs it: without it, one line with the 401 and how to send one (exit 1)', async () => {
    const r = await runTether(['backend', 'list', '--admin', tether.admin!]);
    expect(r.code).toBe(1);
    expect(lines(r.stderr)).toEqual([`tether: admin API http://${tether.admin!}/backends answered 401: this admin API needs a token: send Authorization: Bearer TOKEN (tether commands: --token-file FILE or TETHER_ADMIN_TOKEN)`]);
    expect(r.stdout).toBe('');
  }, T);

  it('the CLI sends it from --token-file, TETHER_ADMIN_TOKEN, or the token of -c FILE', async () => {
    const config = join(dir, 'client.yaml');
    writeFileSync(config, `admin:\n  listen: ${tether.admin!}\n  tokenFile: token\n`);
    const viaFile = await runTether(['table', 'show', '--admin', tether.admin!, '--token-file', tokenFile]);
    const viaEnv = await runTether(['table', 'show', '--admin', tether.admin!], { env: { TETHER_ADMIN_TOKEN: TOKEN } });
    const viaConfig = await runTether(['table', 'show', '-c', config]);
    for (const r of [viaFile, viaEnv, viaConfig]) {
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(r.stdout).toBe('# table: stick-table, type: string, size:100000, used:0\n');
    }
    // explain --admin posts JSON with the token too.
    const hex = '101000044d5154540402003c000461626364';
    const explained = await runTether(['explain', '--json', '--hex', hex, '--admin', tether.admin!, '--token-file', tokenFile]);
    expect(explained.code).toBe(0);
    expect(JSON.parse(explained.stdout)).toMatchObject({ valid: true, clientId: 'abcd' });
  }, T);

  it('a wrong token is refused; an unreadable or short --token-file is one line (exit 1)', async () => {
    const wrong = await runTether(['table', 'show', '--admin', tether.admin!], { env: { TETHER_ADMIN_TOKEN: `${TOKEN}-not` } });
    expect(wrong.code).toBe(1);
    expect(lines(wrong.stderr)).toEqual([`tether: admin API http://${tether.admin!}/table answered 401: wrong admin token`]);
    const missing = await runTether(['table', 'show', '--admin', tether.admin!, '--token-file', join(dir, 'nope')]);
    expect(missing.code).toBe(1);
    expect(lines(missing.stderr)).toEqual([`tether: --token-file ${join(dir, 'nope')} cannot be read: ENOENT: no such file or directory, open '${join(dir, 'nope')}'`]);
    const shortFile = join(dir, 'short');
    writeFileSync(shortFile, 'abc\n');
    const short = await runTether(['table', 'show', '--admin', tether.admin!, '--token-file', shortFile]);
    expect(lines(short.stderr)).toEqual([`tether: --token-file ${shortFile}: the token must be at least 16 characters (for example: openssl rand -hex 32)`]);
  }, T);

  it('the token is never logged: not in the readiness line, not in a refusal', () => {
    expect(tether.logs.length).toBeGreaterThan(1);
    expect(JSON.stringify(tether.logs)).not.toContain(TOKEN);
    expect(tether.logs.filter((l) => l.msg === 'admin request refused').length).toBeGreaterThan(0);
    expect(tether.stderr()).toBe('');
  });

  it('tether validate says where the token comes from, never what it is', async () => {
    const r = await runTether(['validate', '--admin', '127.0.0.1:9999'], { env: { TETHER_ADMIN_TOKEN_FILE: tokenFile } });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`  admin    127.0.0.1:9999 (token from admin.tokenFile ${tokenFile})\n`);
    expect(r.stdout).not.toContain(TOKEN);
  }, T);
});
