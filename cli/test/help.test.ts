import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cleanEnv, deadLoopbackPort, FIXTURES, killAll, lines, NODE, runTether, STACK_TRACE, TETHER_BIN } from './helpers/cli.ts';

/**
 * The CLI helps: every subcommand prints its usage for --help and -h and exits 0 without starting
 * or connecting to anything; an unknown option is named, followed by the subcommand's usage (exit
 * 2); output into a pipe whose reader is gone ends quietly.
 */

const T = 60_000;
afterAll(() => killAll());

/** Every command and the first line of its usage. */
const COMMANDS: readonly (readonly [readonly string[], string])[] = [
  [['start'], 'Usage: tether start [options]'],
  [['validate'], 'Usage: tether validate [-c FILE] [options]'],
  [['explain'], 'Usage: tether explain --hex HEX [--json] [options]'],
  [['plugins'], 'Usage: tether plugins [--json] [options]'],
  [['table'], 'Usage: tether table <show|set|delete|clear> [options]'],
  [['table', 'show'], 'Usage: tether table show [--limit N] [--cursor C | --all] [--key KEY] [options]'],
  [['table', 'set'], 'Usage: tether table set KEY BACKEND [options]'],
  [['table', 'delete'], 'Usage: tether table delete KEY [options]'],
  [['table', 'clear'], 'Usage: tether table clear [--backend NAME] [options]'],
  [['backend'], 'Usage: tether backend <list|set> [options]'],
  [['backend', 'list'], 'Usage: tether backend list [options]'],
  [['backend', 'set'], 'Usage: tether backend set NAME ready|drain|maint [options]'],
  [['reload'], 'Usage: tether reload [options]'],
  [['status'], 'Usage: tether status [options]'],
  [['bench'], 'Usage: tether bench <strategies|network> [options]'],
  [['bench', 'strategies'], 'Usage: tether bench strategies -s SCENARIO [options]'],
  [['bench', 'network'], 'Usage: tether bench network [options]'],
];

/** Runs `tether` for each argument list, a few at a time (each is a Node process). */
async function runAll(argvs: readonly (readonly string[])[]): Promise<Awaited<ReturnType<typeof runTether>>[]> {
  const results: Awaited<ReturnType<typeof runTether>>[] = [];
  for (let i = 0; i < argvs.length; i += 4) results.push(...(await Promise.all(argvs.slice(i, i + 4).map((a) => runTether(a)))));
  return results;
}

describe('--help and -h', () => {
  it.each(['--help', '-h'])('every subcommand prints its usage for %s on stdout and exits 0', async (flag) => {
    const results = await runAll(COMMANDS.map(([argv]) => [...argv, flag]));
    results.forEach((r, i) => {
      const [argv, first] = COMMANDS[i]!;
      expect(r.code, argv.join(' ')).toBe(0);
      expect(r.stderr, argv.join(' ')).toBe('');
      expect(lines(r.stdout)[0], argv.join(' ')).toBe(first);
      expect(r.stdout).toMatch(/-h, --help +this text/);
    });
  }, T);

  it('tether help COMMAND is the same text', async () => {
    const [viaHelp, viaFlag] = await runAll([['help', 'table', 'clear'], ['table', 'clear', '--help']]);
    expect(viaHelp!.code).toBe(0);
    expect(viaHelp!.stdout).toBe(viaFlag!.stdout);
  }, T);

  it('start --help starts nothing: no log line, nothing listening on the --listen port, a missing -c file not even read', async () => {
    const port = await deadLoopbackPort();
    const r = await runTether(['start', '--listen', `127.0.0.1:${port}`, '-c', join(FIXTURES, 'no-such-file.yaml'), '--help']);
    expect(r.code).toBe(0);
    expect(lines(r.stdout)[0]).toBe('Usage: tether start [options]');
    expect(r.stdout).not.toContain('"level"'); // no log line at all
    await expect(new Promise((resolve, reject) => connect({ host: '127.0.0.1', port }).once('connect', resolve).once('error', reject))).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  }, T);

  it('admin commands with --help connect to nothing (a dead --admin address is not an error)', async () => {
    const admin = `127.0.0.1:${await deadLoopbackPort()}`;
    const results = await runAll([['table', 'set', 'k', 'b1', '--admin', admin, '-h'], ['backend', 'list', '--admin', admin, '--help'], ['explain', '--hex', '10', '--admin', admin, '--help']]);
    for (const r of results) {
      expect(r.code).toBe(0);
      expect(r.stderr).toBe('');
      expect(r.stdout).toMatch(/^Usage: tether /);
    }
  }, T);
});

describe('mistakes: the option named, then the usage (exit 2)', () => {
  it('an unknown option of any subcommand', async () => {
    const leaves = COMMANDS.filter(([argv]) => argv.length === 2 || !['table', 'backend', 'bench'].includes(argv[0]!));
    const results = await runAll(leaves.map(([argv]) => [...argv, '--bogus']));
    results.forEach((r, i) => {
      const [argv, first] = leaves[i]!;
      expect(r.code, argv.join(' ')).toBe(2);
      const err = lines(r.stderr);
      expect(err[0], argv.join(' ')).toBe('tether: unknown option --bogus');
      expect(err[1], argv.join(' ')).toBe(first);
      expect(r.stderr).not.toMatch(STACK_TRACE);
      expect(r.stdout).toBe('');
    });
  }, T);

  it('an option without its value, a missing argument, an unknown subcommand', async () => {
    const [noValue, noKey, noSub, badSub] = await runAll([['table', 'show', '--admin'], ['table', 'delete'], ['backend'], ['table', 'drop']]);
    expect(noValue!.code).toBe(2);
    expect(lines(noValue!.stderr).slice(0, 2)).toEqual(['tether: option --admin needs a value', 'Usage: tether table show [--limit N] [--cursor C | --all] [--key KEY] [options]']);
    expect(lines(noKey!.stderr).slice(0, 2)).toEqual(['tether: table delete needs KEY', 'Usage: tether table delete KEY [options]']);
    expect(lines(noSub!.stderr).slice(0, 2)).toEqual(['tether: backend needs a subcommand: list or set', 'Usage: tether backend <list|set> [options]']);
    expect(lines(badSub!.stderr).slice(0, 2)).toEqual(['tether: unknown table subcommand "drop"; use show, set, delete or clear', 'Usage: tether table <show|set|delete|clear> [options]']);
    for (const r of [noKey, noSub, badSub]) expect(r!.code).toBe(2);
  }, T);
});

describe('output into a closed pipe', () => {
  /** `tether ARGS | READER` in a real shell; tether's exit status is reported on stderr by the shell. */
  function pipeline(args: string, reader: string): Promise<{ stdout: string; stderr: string; code: number | null }> {
    const script = `"$NODE" "$BIN" ${args} | ${reader}; echo "tether-status=\${PIPESTATUS[0]}" >&2`;
    const child = spawn('bash', ['-c', script], { env: { ...cleanEnv(), NODE, BIN: TETHER_BIN }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    return new Promise((resolve) => child.once('close', (code) => resolve({ stdout, stderr, code })));
  }

  it.each([
    ['head -1', 'a reader that stops after the first line'],
    ['true', 'a reader that is gone before the first write'],
  ])('tether plugins | %s ends quietly with exit 0 (%s)', async (reader) => {
    const r = await pipeline('plugins', reader);
    expect(r.stderr).toBe('tether-status=0\n');
    if (reader === 'head -1') expect(r.stdout).toMatch(/^client-id +\(extractor, /);
  }, T);
});

describe('tether validate shows each chain entry\'s when condition', () => {
  it('an entry for some clients only says which; an entry for everyone has no mark', async () => {
    const r = await runTether(['validate', '-c', join(FIXTURES, 'session-aware.yaml')]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('  select   stick-table (when persistent) → round-robin (when clean) → least-connections\n');
    expect(r.stdout).toContain('  key      client-id\n');
  }, T);
});
