import { join } from 'node:path';
import mqttPacket from 'mqtt-packet';
import { afterAll, describe, expect, it } from 'vitest';
import { FIXTURES, killAll, lines, runTether, STACK_TRACE } from './helpers/cli.ts';

/** `tether plugins`: every plugin known, its kind, version, source and options. */

const T = 30_000;

interface PluginRow {
  name: string;
  kind: string;
  version: string;
  source: string;
  description: string;
  options: { name: string; default: unknown; doc: string }[];
}

const BUILTINS = [
  { name: 'client-id', kind: 'extractor', version: '0.1.0', source: '@tether/plugin-mqtt-keys' },
  { name: 'username', kind: 'extractor', version: '0.1.0', source: '@tether/plugin-mqtt-keys' },
  { name: 'stick-table', kind: 'strategy', version: '0.1.0', source: '@tether/strategy-stick-table' },
  { name: 'least-connections', kind: 'strategy', version: '0.1.0', source: '@tether/strategy-least-connections' },
  { name: 'proxy-protocol', kind: 'sink', version: '0.1.0', source: '@tether/plugin-proxy-protocol' },
];
const FIXTURE_PLUGIN = join(FIXTURES, 'plugins', 'last-backend.ts');

async function pluginsJson(args: string[] = [], cwd?: string): Promise<PluginRow[]> {
  const r = await runTether(['plugins', '--json', ...args], cwd ? { cwd } : {});
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout) as PluginRow[];
}

afterAll(() => killAll());

describe('tether plugins: the built-ins', () => {
  it('--json lists each with kind, version and package', async () => {
    const rows = await pluginsJson();
    // These five at least (more built-ins may be added); each once.
    expect(rows.map(({ name, kind, version, source }) => ({ name, kind, version, source }))).toEqual(expect.arrayContaining(BUILTINS));
    expect(new Set(rows.map((r) => r.name)).size).toBe(rows.length);
    for (const row of rows) {
      expect(['transport', 'extractor', 'strategy', 'sink', 'provider']).toContain(row.kind);
      expect(row.version).toMatch(/^\d+\.\d+\.\d+/);
      expect(row.description).not.toBe('');
    }
  }, T);

  it('--json shows the stick-table options with their defaults', async () => {
    const stick = (await pluginsJson()).find((r) => r.name === 'stick-table')!;
    expect(stick.options.map((o) => [o.name, o.default])).toEqual(expect.arrayContaining([['size', 100_000], ['expire', '30m'], ['keyLength', 128], ['mode', 'learn']]));
    for (const option of stick.options) expect(option.doc).not.toBe('');
  }, T);

  it('the text form: one heading line per plugin with kind and version', async () => {
    const r = await runTether(['plugins']);
    expect(r.code).toBe(0);
    const out = lines(r.stdout);
    for (const p of BUILTINS) expect(out).toContain(`${p.name}  (${p.kind}, ${p.version}, ${p.source})`);
    expect(out).toContain('    expire = "30m"  Idle time after which an entry is forgotten, counted from the last connect or disconnect (HAProxy expire).');
  }, T);
});

describe('tether plugins --plugin: a third-party plugin made with defineStrategy', () => {
  it('by absolute path: listed after the built-ins with its own kind, version and options', async () => {
    const builtins = await pluginsJson();
    const rows = await pluginsJson(['--plugin', FIXTURE_PLUGIN]);
    expect(rows.slice(0, -1)).toEqual(builtins);
    expect(rows.at(-1)).toEqual({
      name: 'e2e:last-backend',
      kind: 'strategy',
      version: '1.2.3',
      source: FIXTURE_PLUGIN,
      description: 'Test fixture: picks the last backend offered.',
      options: [{ name: 'prefer', default: '', doc: 'Backend name to pick when it is available.' }],
    });
  }, T);

  it('by a path relative to the working directory, in the text form too', async () => {
    const r = await runTether(['plugins', '--plugin', './plugins/last-backend.ts'], { cwd: FIXTURES });
    expect(r.code).toBe(0);
    expect(lines(r.stdout)).toContain('e2e:last-backend  (strategy, 1.2.3, ./plugins/last-backend.ts)');
  }, T);

  it('from the plugins list of a config file, relative to that file', async () => {
    const rows = await pluginsJson(['-c', join(FIXTURES, 'with-plugin.yaml')], '/');
    expect(rows.find((r) => r.name === 'e2e:last-backend')).toMatchObject({ kind: 'strategy', version: '1.2.3', source: './plugins/last-backend.ts' });
  }, T);

  it('the loaded strategy is usable by name in --select (validate and explain)', async () => {
    const v = await runTether(['validate', '--plugin', FIXTURE_PLUGIN, '--select', 'stick-table,e2e:last-backend']);
    expect(v.code).toBe(0);
    expect(v.stdout).toContain('  select   stick-table → e2e:last-backend\n');

    const hex = mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: 'last-please', keepalive: 60 }).toString('hex');
    const e = await runTether(['explain', '--json', '--hex', hex, '--plugin', FIXTURE_PLUGIN, '--select', 'e2e:last-backend',
      '--backend', 'first=127.0.0.1:1884', '--backend', 'second=127.0.0.1:1885', '--backend', 'third=127.0.0.1:1886']);
    expect(e.stderr).toBe('');
    expect(e.code).toBe(0);
    expect(JSON.parse(e.stdout)).toMatchObject({ valid: true, clientId: 'last-please', backend: 'third', strategy: 'e2e:last-backend' });
  }, T);

  it('a path that does not exist: exit 1, one line naming it', async () => {
    const missing = join(FIXTURES, 'plugins', 'no-such-plugin.ts');
    const r = await runTether(['plugins', '--plugin', missing]);
    expect(r.code).toBe(1);
    expect(lines(r.stderr)).toEqual([expect.stringMatching(new RegExp(`^tether: plugin "${missing.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}": failed to import: `))]);
    expect(r.stderr).not.toMatch(STACK_TRACE);
    expect(r.stdout).toBe('');
  }, T);

  it('a module that exports no plugin: exit 1, saying what was expected', async () => {
    const r = await runTether(['plugins', '--plugin', join(FIXTURES, 'plugins', 'not-a-plugin.ts')]);
    expect(r.code).toBe(1);
    expect(lines(r.stderr)).toEqual([expect.stringMatching(/not-a-plugin\.ts": exports no plugin \(expected a default export made with defineExtractor, defineStrategy or defineSink\)$/)]);
  }, T);

  it('a package name that is not installed: exit 1, one line naming it', async () => {
    const r = await runTether(['plugins', '--plugin', '@tether-e2e/not-installed']);
    expect(r.code).toBe(1);
    // One line: not Node's "Require stack:" list after it (which named a made-up <baseDir>/noop.js).
    expect(lines(r.stderr)).toEqual([expect.stringMatching(/^tether: plugin "@tether-e2e\/not-installed": cannot be found from /)]);
    expect(r.stderr).not.toContain('noop.js');
    expect(r.stdout).toBe('');
  }, T);
});
