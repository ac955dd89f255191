import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { EXAMPLES, FIXTURES, killAll, runTether, STACK_TRACE } from './helpers/cli.ts';

/** `tether bench strategies`: the simulator as a user runs it. */

const T = 60_000;
const SCENARIO = join(FIXTURES, 'bench-small.yaml');
const TENANT_PLUGIN = join(EXAMPLES, 'plugins', 'tenant-affinity', 'src', 'index.ts');
const dir = mkdtempSync(join(tmpdir(), 'tether-bench-'));

interface Json {
  scenario: { name: string; seed: number; clients: { count: number } };
  windows: { label: string }[];
  chains: { name: string; totals: { moved: number; forced: number; stickiness: number | null }; measured: { nsPerSelection: number; memory: { bytesPerEntry?: number; note: string } } }[];
}

afterAll(() => {
  killAll();
  rmSync(dir, { recursive: true, force: true });
});

describe('tether bench strategies', () => {
  it('--json: every default chain, the scenario and its windows; plain progress lines on a pipe', async () => {
    const r = await runTether(['bench', 'strategies', '-s', SCENARIO, '--json'], { timeoutMs: T });
    expect(r.code).toBe(0);
    const result = JSON.parse(r.stdout) as Json;
    expect(result.scenario).toMatchObject({ name: 'bench-small', seed: 4, clients: { count: 1000 } });
    expect(result.windows.map((w) => w.label)).toEqual(['steady', 'restart two']);
    expect(result.chains.map((c) => c.name)).toEqual([
      'stick-table+least-connections', 'rendezvous-hash+least-connections', 'stick-table[persistent]+least-connections',
      'round-robin', 'random-two-choices', 'least-connections',
    ]);
    const sticky = result.chains[0]!;
    expect(sticky.totals.stickiness).toBe(1);
    expect(sticky.totals.moved).toBe(sticky.totals.forced);
    expect(sticky.measured.nsPerSelection).toBeGreaterThan(0);
    // Not a terminal: one line per chain, no carriage returns.
    expect(r.stderr).toContain('bench: chain 1/6 stick-table+least-connections\n');
    expect(r.stderr).not.toContain('\r');
    expect(r.stderr).not.toMatch(STACK_TRACE);
  }, T);

  it('--chain overrides, --clients and --seed too; the text table and an HTML report', async () => {
    const report = join(dir, 'out.html');
    const r = await runTether(['bench', 'strategies', '-s', SCENARIO, '--chain', 'stick-table@persistent,least-connections', '--chain', 'round-robin', '--clients', '300', '--seed', '9', '--report', report], { timeoutMs: T });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('300 clients');
    expect(r.stdout).toContain('seed 9');
    expect(r.stdout).toMatch(/^stick-table\[persistent\]\+least-connections\s+100\.0%/m);
    expect(r.stdout).toMatch(/^round-robin\s+\d/m);
    expect(r.stdout).toContain('Sessions moved per event (moved / minimum):');
    expect(r.stderr).toContain(`report written to ${report}`);
    const html = readFileSync(report, 'utf8');
    expect(html).toContain('<svg');
    expect(html).toContain('"name":"round-robin"');
  }, T);

  it('the same seed prints the same results', async () => {
    const args = ['bench', 'strategies', '-s', SCENARIO, '--chain', 'random-two-choices', '--json'];
    const [a, b] = await Promise.all([runTether(args, { timeoutMs: T }), runTether(args, { timeoutMs: T })]);
    const strip = (out: string) => (JSON.parse(out) as Json).chains.map(({ measured: _m, ...rest }) => rest);
    expect(strip(b.stdout)).toEqual(strip(a.stdout));
  }, T);

  it('measures memory per client when the GC is exposed', async () => {
    const args = ['bench', 'strategies', '-s', SCENARIO, '--chain', 'stick-table,least-connections', '--clients', '20000', '--json'];
    const r = await runTether(args, { timeoutMs: T, env: { NODE_OPTIONS: '--expose-gc' } });
    expect(r.code).toBe(0);
    const memory = (JSON.parse(r.stdout) as Json).chains[0]!.measured.memory;
    expect(memory.bytesPerEntry).toBeGreaterThan(20);
    expect(memory.bytesPerEntry).toBeLessThan(2_000);
  }, T);

  it('runs a third-party strategy given with --plugin and a JSON --chain with its options', async () => {
    const chain = JSON.stringify([{ use: 'example:tenant-affinity', options: { tenants: { acme: ['one'] } } }, 'least-connections']);
    const r = await runTether(['bench', 'strategies', '-s', SCENARIO, '--plugin', TENANT_PLUGIN, '--chain', chain, '--json'], { timeoutMs: T });
    expect(r.stderr).not.toMatch(STACK_TRACE);
    expect(r.code).toBe(0);
    expect((JSON.parse(r.stdout) as Json).chains[0]!.name).toBe('example:tenant-affinity+least-connections');
  }, T);

  it('errors are one line: usage (exit 2), scenario and plugin problems (exit 1)', async () => {
    const noScenario = await runTether(['bench', 'strategies']);
    expect(noScenario.code).toBe(2);
    expect(noScenario.stderr).toBe('tether: bench strategies: -s/--scenario FILE is required (see examples/bench/)\n');

    const badChain = await runTether(['bench', 'strategies', '-s', SCENARIO, '--chain', '[oops']);
    expect(badChain.code).toBe(2);
    expect(badChain.stderr).toMatch(/^tether: --chain \[oops: not valid JSON/);

    const badScenario = await runTether(['bench', 'strategies', '-s', join(dir, 'missing.yaml')]);
    expect(badScenario.code).toBe(1);
    expect(badScenario.stderr).toMatch(/^tether: invalid scenario .*missing\.yaml: cannot be read/);

    const badPlugin = await runTether(['bench', 'strategies', '-s', SCENARIO, '--chain', 'no-such-strategy,least-connections']);
    expect(badPlugin.code).toBe(1);
    expect(badPlugin.stderr).toMatch(/^tether: chain "no-such-strategy\+least-connections": plugin "no-such-strategy": is not a known strategy/);
    for (const r of [noScenario, badChain, badScenario, badPlugin]) expect(r.stderr).not.toMatch(STACK_TRACE);

    const unknown = await runTether(['bench', 'sockets']);
    expect(unknown.code).toBe(2);
    expect(existsSync(join(dir, 'out-none.html'))).toBe(false);
  }, T);

  it('is listed in tether help, and bench --help explains the flags', async () => {
    expect((await runTether(['help'])).stdout).toContain('bench strategies -s FILE');
    const help = await runTether(['bench', 'strategies', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('--report FILE.html');
  }, T);
});
