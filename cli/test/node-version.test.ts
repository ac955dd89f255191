import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { killAll, lines, NODE, runTether, STACK_TRACE } from './helpers/cli.ts';

/** cli/bin/tether.js is plain JavaScript so that an old Node can say clearly that it is too old. */

const T = 30_000;
const OLD_NODE = '/usr/bin/node';

function oldNodeVersion(): string | undefined {
  if (!existsSync(OLD_NODE)) return undefined;
  try {
    return execFileSync(OLD_NODE, ['--version'], { encoding: 'utf8', timeout: 10_000 }).trim();
  } catch {
    return undefined;
  }
}

const version = oldNodeVersion();
const [major = 0, minor = 0] = (version ?? '').replace(/^v/, '').split('.').map(Number);
const tooOld = version !== undefined && (major < 22 || (major === 22 && minor < 12));
const skipReason = version === undefined ? `${OLD_NODE} is missing` : tooOld ? '' : `${OLD_NODE} is ${version}, not older than 22.12`;

afterAll(() => killAll());

describe(`an old Node.js${skipReason ? ` [skipped: ${skipReason}]` : ` (${OLD_NODE} ${version})`}`, () => {
  it.skipIf(!tooOld).each([
    ['plugins'],
    ['start', '--listen', '127.0.0.1:0'],
    ['validate', '-c', 'does-not-matter.yaml'],
  ])('tether %s: names the required version, exits 1, no stack trace', async (...args) => {
    const r = await runTether(args, { node: OLD_NODE });
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    const err = lines(r.stderr);
    expect(err[0]).toBe(`tether: Node.js 22.12 or newer is required (Node 24 LTS recommended); this is ${version} at ${OLD_NODE}.`);
    expect(r.stderr).toContain('npm start');
    expect(r.stderr).not.toMatch(STACK_TRACE);
    expect(r.stderr).not.toMatch(/ERR_|SyntaxError|Unknown file extension/);
  }, T);
});

describe(`the project's Node.js (${process.version})`, () => {
  it('is new enough: the CLI runs', async () => {
    const [maj = 0, min = 0] = process.versions.node.split('.').map(Number);
    expect(maj > 22 || (maj === 22 && min >= 12), `${NODE} is ${process.version}`).toBe(true);
    const r = await runTether(['help']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Usage: tether <command> \[options\]/);
  }, T);
});

describe('commands and usage errors', () => {
  it.each([[[]], [['--help']], [['-h']]])('tether %j prints the usage and exits 0', async (args) => {
    const r = await runTether(args);
    expect(r.code).toBe(0);
    for (const command of ['start', 'validate', 'explain', 'table show', 'plugins']) expect(r.stdout).toContain(`  ${command}`);
  }, T);

  it('an unknown command: one line, exit 2', async () => {
    const r = await runTether(['stats']);
    expect(r.code).toBe(2);
    expect(lines(r.stderr)).toEqual(['tether: unknown command "stats"; try: tether help']);
    expect(r.stdout).toBe('');
  }, T);

  it('an unknown option of start: named, then the usage of start; exit 2, nothing started', async () => {
    const r = await runTether(['start', '--listen', '127.0.0.1:0', '--frontend', 'x']);
    expect(r.code).toBe(2);
    expect(lines(r.stderr)[0]).toBe('tether: unknown option --frontend');
    expect(lines(r.stderr)[1]).toBe('Usage: tether start [options]');
    expect(r.stderr).not.toMatch(STACK_TRACE);
    expect(r.stdout).toBe('');
  }, T);
});
