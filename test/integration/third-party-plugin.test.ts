import { spawn, type ChildProcess } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PluginError } from '@tether/core';
import { startEmbeddedBrokers, type EmbeddedBroker } from '@tether/embedded-broker';
import type { MqttClient } from 'mqtt';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { startBalancer, type TestBalancer } from '../harness/balancer.ts';
import { waitFor, waitForLog } from '../harness/poll.ts';
import { AedesWitness } from '../harness/traffic-aedes-witness.ts';
import { ClientPool } from '../harness/traffic-mqtt-clients.ts';
import { Teardown } from '../harness/traffic-teardown.ts';

/**
 * A third-party strategy, loaded the way a user loads one: the worked example in
 * examples/plugins/tenant-affinity, outside the workspace packages, named in a YAML file by path.
 * Real aedes brokers (independent: cluster false) and real mqtt.js clients; which broker a client
 * reached is read from the brokers themselves (AedesWitness), which strategy chose it from
 * Tether's log.
 */

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const EXAMPLE_DIR = join(REPO, 'examples/plugins/tenant-affinity');
const PLUGIN = join(EXAMPLE_DIR, 'src/index.ts');
const EXAMPLE_YAML = join(EXAMPLE_DIR, 'example.yaml');
const TETHER_BIN = join(REPO, 'cli/bin/tether.js');
const TSC = join(REPO, 'node_modules/typescript/bin/tsc');
const NAME = 'example:tenant-affinity';

/** The backend names example.yaml gives its three brokers; the tests put real brokers behind them. */
const NAMES = ['acme-1', 'acme-2', 'globex-1'] as const;
const ACME = ['acme-1', 'acme-2'];

const teardown = new Teardown();
const pool = new ClientPool();

afterEach(async () => {
  await pool.closeAll();
  await teardown.run();
}, 30_000);

// ---- helpers ---------------------------------------------------------------------------------

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'tether-third-party-'));
  teardown.defer(`remove ${dir}`, () => rm(dir, { recursive: true, force: true }));
  return dir;
}

interface Rig {
  readonly brokers: EmbeddedBroker[];
  readonly witness: AedesWitness;
  readonly balancer: TestBalancer;
  /** backends option putting the real brokers behind example.yaml's names. */
  readonly backends: string[];
}

async function startBrokers(): Promise<Omit<Rig, 'balancer'>> {
  const brokers = teardown.add('brokers', await startEmbeddedBrokers(NAMES.length, { cluster: false }), (bs) => Promise.all(bs.map((b) => b.close())));
  const witness = teardown.add('witness', new AedesWitness(brokers), (w) => w.detach());
  return { brokers, witness, backends: brokers.map((b, i) => `${NAMES[i]}=127.0.0.1:${b.port}`) };
}

/** Brokers, then a balancer from `file` (by default the shipped example.yaml) with the brokers' real ports. */
async function rig(file = EXAMPLE_YAML): Promise<Rig> {
  const base = await startBrokers();
  const balancer = teardown.add('balancer', await startBalancer({ backends: base.backends }, file), (b) => b.close());
  return { ...base, balancer };
}

interface Landed {
  /** Backend name of the broker that saw the client (the brokers' account). */
  readonly backend: string;
  /** The strategy that chose, and the backend it chose (Tether's account). */
  readonly strategy: string;
  readonly loggedBackend: string;
}

/**
 * Connects one client through Tether and waits until it is connected, then reports where the
 * broker saw it and which strategy Tether says chose. The previous connection with this client id,
 * if any, must be closed by the caller first.
 */
async function connect(r: Rig, clientId: string, username?: string): Promise<Landed & { client: MqttClient }> {
  const sniffedLines = () => r.balancer.logs.filter((l) => l.msg === 'connect sniffed' && (l.mqtt as { clientId?: string } | undefined)?.clientId === clientId);
  const before = sniffedLines().length;
  const landing = r.witness.nextLanding(clientId);
  const { client } = await pool.connect(r.balancer.url, { clientId, clean: true, ...(username === undefined ? {} : { username }) });
  const broker = (await landing).broker;
  const sniffed = await waitFor(() => sniffedLines()[before], { what: `Tether's "connect sniffed" line for ${clientId}` });
  const spliced = await waitForLog(r.balancer.logs, { msg: 'spliced', conn: sniffed.conn });
  return { backend: NAMES[r.brokers.findIndex((b) => b.id === broker)]!, strategy: String(spliced.strategy), loggedBackend: String(spliced.backend), client };
}

/** Connects, then disconnects once the broker has seen the client go, so the id can come back. */
async function visit(r: Rig, clientId: string, username?: string): Promise<Landed> {
  const departed = r.witness.nextDeparture(clientId);
  const { client, ...landed } = await connect(r, clientId, username);
  await pool.disconnect(client);
  await departed;
  return landed;
}

const counter = (r: Rig, name: string): number => r.balancer.server.stats.get(`example_tenant_affinity_${name}`);

const live = new Set<ChildProcess>();
afterAll(() => {
  for (const child of live) if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) process.kill(child.pid, 'SIGKILL');
});

/** Runs a command to completion with this Node (24); kills it by PID past the limit. */
function run(args: readonly string[], options: { cwd?: string; limitMs?: number } = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  // A developer's TETHER_* settings must not change what the CLI sees.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('TETHER_')));
  const child = spawn(process.execPath, args, { cwd: options.cwd ?? REPO, env, stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  return new Promise((resolve, reject) => {
    const limitMs = options.limitMs ?? 20_000;
    const timer = setTimeout(() => {
      if (child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
      reject(new Error(`${args.join(' ')} did not exit within ${limitMs} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, limitMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      live.delete(child);
      resolve({ code, stdout, stderr });
    });
  });
}

const tether = (args: readonly string[], cwd?: string) => run([TETHER_BIN, ...args], cwd === undefined ? {} : { cwd });

/** YAML for a config in `dir` that names the example plugin by a path relative to that directory. */
function configUsingPath(dir: string, options: string, backends: readonly string[] = ['acme-1=127.0.0.1:1884', 'acme-2=127.0.0.1:1885', 'globex-1=127.0.0.1:1886']): string {
  return [
    'listen: 127.0.0.1:0',
    `backends: ${JSON.stringify(backends)}`,
    'select:',
    `  - use: ${JSON.stringify(relative(dir, PLUGIN))}`,
    `    options: ${options}`,
    '  - least-connections',
    '',
  ].join('\n');
}

async function startError(overrides: Record<string, unknown>, file: string): Promise<unknown> {
  try {
    const balancer = await startBalancer(overrides, file);
    await balancer.close();
  } catch (err) {
    return err;
  }
  throw new Error('the balancer started, but it should have refused');
}

// ---- routing with the shipped example.yaml ----------------------------------------------------

describe('tenant-affinity from examples/plugins/tenant-affinity/example.yaml (plugins: [./src/index.ts])', { timeout: 60_000 }, () => {
  it('sends each tenant to its own brokers, whichever separator its clients use, and every reconnect to the same one', async () => {
    const r = await rig();
    const first = new Map<string, string>();
    for (let i = 0; i < 8; i++) {
      const username = i % 2 === 0 ? `acme:device${i}` : `acme/device${i}`;
      const landed = await visit(r, `acme-client-${i}`, username);
      expect(landed).toEqual({ backend: expect.toBeOneOf(ACME), strategy: NAME, loggedBackend: landed.backend });
      first.set(`acme-client-${i}`, landed.backend);
    }
    for (let i = 0; i < 3; i++) {
      expect(await visit(r, `globex-client-${i}`, `globex:sensor${i}`)).toEqual({ backend: 'globex-1', strategy: NAME, loggedBackend: 'globex-1' });
    }
    // The group is shared out (pick: hash spreads the client ids), never left.
    expect(new Set(first.values())).toEqual(new Set(ACME));
    // pick: hash with no table: a reconnect finds the same broker (and its session, were it persistent).
    for (const [clientId, backend] of first) {
      expect((await visit(r, clientId, 'acme:again')).backend).toBe(backend);
    }
    expect(counter(r, 'selected')).toBe(8 + 3 + 8);
    expect(counter(r, 'unknown_tenant') + counter(r, 'no_tenant')).toBe(0);
  });

  it('passes unknown tenants and clients without a user name to the rest of the chain (stick-table, least-connections)', async () => {
    const r = await rig();
    const initech = await visit(r, 'initech-client', 'initech:device1');
    expect(initech.strategy).toBe('least-connections');
    // Placed by the chain, the client is now the stick table's: its reconnect goes back there.
    expect(await visit(r, 'initech-client', 'initech:device1')).toEqual({ backend: initech.backend, strategy: 'stick-table', loggedBackend: initech.backend });

    expect((await visit(r, 'anonymous-client')).strategy).toBe('least-connections');
    // Without a separator there is no tenant, even if the name is a tenant's.
    expect((await visit(r, 'bare-client', 'acme')).strategy).toBe('least-connections');
    // Tenant names are case-sensitive.
    expect((await visit(r, 'upper-client', 'ACME:device1')).strategy).toBe('least-connections');

    expect(counter(r, 'unknown_tenant')).toBe(3); // initech twice, ACME once
    expect(counter(r, 'no_tenant')).toBe(2);
    expect(counter(r, 'selected')).toBe(0);
  });

  it('defers to the chain while all of a tenant\'s brokers are unavailable, and takes the tenant home when one is back', async () => {
    const r = await rig();
    expect((await visit(r, 'globex-roamer', 'globex:device1')).backend).toBe('globex-1');

    expect(r.balancer.server.pool.setAdminState('globex-1', 'maint')).toBe(true);
    const away = await visit(r, 'globex-roamer', 'globex:device1');
    // Not refused: the chain placed it elsewhere (the stick table's entry points at globex-1, which is not offered).
    expect(away).toEqual({ backend: expect.toBeOneOf(ACME), strategy: 'least-connections', loggedBackend: away.backend });
    expect(counter(r, 'group_unavailable')).toBe(1);

    expect(r.balancer.server.pool.setAdminState('globex-1', 'ready')).toBe(true);
    // The tenant strategy comes first in the chain, so the stick table's new entry does not keep it away.
    expect(await visit(r, 'globex-roamer', 'globex:device1')).toEqual({ backend: 'globex-1', strategy: NAME, loggedBackend: 'globex-1' });
  });

  it('`tether validate -c example.yaml` accepts it, resolving ./src/index.ts from the file, not the working directory', async () => {
    const elsewhere = await tempDir();
    const result = await tether(['validate', '-c', EXAMPLE_YAML], elsewhere);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`${EXAMPLE_YAML}: configuration is valid`);
    expect(result.stdout).toContain(`  select   ${NAME} → stick-table → least-connections`);
    expect(result.stdout).toContain('  backends acme-1=127.0.0.1:1884, acme-2=127.0.0.1:1885, globex-1=127.0.0.1:1886');
  });
});

// ---- loading by path, from a config file elsewhere -------------------------------------------

describe('tenant-affinity named directly by a relative `use:` path (no plugins list)', { timeout: 60_000 }, () => {
  it('is loaded from a config file in another directory and routes tenants', async () => {
    const dir = await tempDir();
    const file = join(dir, 'tether.yaml');
    await writeFile(file, configUsingPath(dir, '{ tenants: { globex: [globex-1], acme: [acme-2] }, pick: least-connections }'));
    expect(relative(dir, PLUGIN)).toMatch(/^\.\./); // really relative to the file, not absolute
    const base = await startBrokers();
    const balancer = teardown.add('balancer', await startBalancer({ backends: base.backends }, file), (b) => b.close());
    const r = { ...base, balancer };
    expect((await visit(r, 'g', 'globex:1')).backend).toBe('globex-1');
    expect((await visit(r, 'a', 'acme:1')).backend).toBe('acme-2');
    expect((await visit(r, 'i', 'initech:1')).strategy).toBe('least-connections');
    expect(r.balancer.server.strategies.strategies.map((s) => s.name)).toEqual([NAME, 'least-connections']);
  });
});

// ---- errors a user sees ----------------------------------------------------------------------

describe('errors at start name the plugin and the problem', { timeout: 60_000 }, () => {
  it.each([
    ['a tenant mapped to a single name instead of a list', '{ tenants: { acme: acme-1 } }', 'tenants: tenant "acme" must map to a non-empty list of backend names'],
    ['no tenants at all', '{ separator: "/" }', 'tenants: is required'],
    ['an unknown pick rule', '{ tenants: { acme: [acme-1] }, pick: random }', 'pick: must be one of the possible values: ["hash","least-connections"]'],
    ['a misspelt option', '{ tenants: { acme: [acme-1] }, seperator: "/" }', "configuration param 'seperator' not declared in the schema"],
  ])('invalid options (%s): TETHER_ERR_PLUGIN_OPTIONS in-process, one clear line from `tether validate`', async (_what, options, detail) => {
    const dir = await tempDir();
    const file = join(dir, 'bad.yaml');
    await writeFile(file, configUsingPath(dir, options));

    const err = await startError({}, file);
    expect(err).toBeInstanceOf(PluginError);
    expect(err).toMatchObject({ code: 'TETHER_ERR_PLUGIN_OPTIONS', plugin: NAME, phase: 'options' });
    expect((err as Error).message).toContain(`plugin "${NAME}": invalid options: `);
    expect((err as Error).message).toContain(detail);

    const result = await tether(['validate', '-c', file]);
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain(`tether: plugin "${NAME}": invalid options: `);
    expect(result.stderr).toContain(detail);
    expect(result.stderr).not.toMatch(/\n\s+at /); // a message, not a stack trace
  });

  it('a plugin module written for apiVersion 99: TETHER_ERR_PLUGIN_API_VERSION, in-process and from `tether start`', async () => {
    const dir = await tempDir();
    // A plain .mjs module, as a plugin built for a future Tether might look; it never gets to create().
    await writeFile(join(dir, 'future.mjs'), [
      "export default { name: 'e2e:from-the-future', kind: 'strategy', apiVersion: 99, version: '9.0.0',",
      "  create() { throw new Error('create() must not be reached'); } };",
      '',
    ].join('\n'));
    const file = join(dir, 'future.yaml');
    await writeFile(file, ['listen: 127.0.0.1:0', 'backends: [a=127.0.0.1:1884]', 'plugins: [./future.mjs]', 'select: [e2e:from-the-future, least-connections]', ''].join('\n'));
    const message = 'plugin "e2e:from-the-future": was written for plugin API version 99, but this Tether implements version 1';

    const err = await startError({}, file);
    expect(err).toBeInstanceOf(PluginError);
    expect(err).toMatchObject({ code: 'TETHER_ERR_PLUGIN_API_VERSION', plugin: 'e2e:from-the-future', message });

    const result = await tether(['start', '-c', file]);
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(`tether: ${message}\n`);
    expect(result.stdout).not.toContain('tether listening');
  });
});

// ---- the CLI's view of it --------------------------------------------------------------------

describe('`tether plugins --plugin <path>` lists it', { timeout: 60_000 }, () => {
  interface Row { name: string; kind: string; version: string; source: string; description: string; options: { name: string; default: unknown; doc: string }[] }

  it('--json: kind, version, source and every option with its default and doc', async () => {
    const result = await tether(['plugins', '--json', '--plugin', PLUGIN]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const rows = JSON.parse(result.stdout) as Row[];
    const row = rows.find((r) => r.name === NAME);
    expect(row).toMatchObject({ kind: 'strategy', version: '1.0.0', source: PLUGIN });
    expect(row!.description).toMatch(/tenant/);
    expect(row!.options.map((o) => [o.name, o.default])).toEqual([['tenants', null], ['separator', ':'], ['pick', 'hash']]);
    for (const o of row!.options) expect(o.doc).not.toBe('');
    // The built-ins are still there: the plugin adds to them.
    expect(rows.map((r) => r.name)).toEqual(expect.arrayContaining(['stick-table', 'least-connections', 'client-id']));
  });

  it('text form, with a path relative to the working directory', async () => {
    const path = `./${relative(REPO, PLUGIN)}`;
    const result = await tether(['plugins', '--plugin', path]);
    expect(result.code).toBe(0);
    const lines = result.stdout.split('\n');
    expect(lines).toContain(`${NAME}  (strategy, 1.0.0, ${path})`);
    expect(lines).toContain('    pick = "hash"  hash: the same client always gets the same backend of its group (rendezvous hash of the key); least-connections: the emptiest one.');
  });
});

// ---- publishing: what docs/plugins.md says about node_modules ---------------------------------

describe('published as a package: JavaScript in node_modules loads, TypeScript there does not', { timeout: 60_000 }, () => {
  /**
   * A project directory with the plugin installed under node_modules, as `npm install` would
   * leave it. @tether/core is linked to this checkout, as npm links workspace packages.
   */
  async function project(): Promise<{ dir: string; pkg: string; config: string }> {
    const dir = await tempDir();
    const pkg = join(dir, 'node_modules/tether-strategy-tenant-affinity');
    await mkdir(join(dir, 'node_modules/@tether'), { recursive: true });
    await symlink(join(REPO, 'core'), join(dir, 'node_modules/@tether/core'), 'dir');
    await mkdir(pkg, { recursive: true });
    const config = join(dir, 'tether.yaml');
    await writeFile(config, [
      'backends: [acme-1=127.0.0.1:1884, globex-1=127.0.0.1:1886]',
      'plugins: [tether-strategy-tenant-affinity]',
      'select:',
      `  - use: ${JSON.stringify(NAME)}`,
      '    options: { tenants: { acme: [acme-1], globex: [globex-1] } }',
      '  - least-connections',
      '',
    ].join('\n'));
    return { dir, pkg, config };
  }

  it('compiled with its tsconfig.build.json (npm run build), it loads by package name', async () => {
    const { pkg, config } = await project();
    // --noCheck: type errors are `tsc -p .`'s business (it checks examples/ too); this test is about
    // what the build emits and whether Tether can load it from node_modules.
    const build = await run([TSC, '-p', join(EXAMPLE_DIR, 'tsconfig.build.json'), '--noCheck', '--outDir', join(pkg, 'dist')], { limitMs: 60_000 });
    expect(build.stdout + build.stderr).toBe('');
    expect(build.code).toBe(0);
    await cp(join(EXAMPLE_DIR, 'package.json'), join(pkg, 'package.json'));
    // The emitted JavaScript imports its sibling as .js (rewriteRelativeImportExtensions).
    expect(await readFile(join(pkg, 'dist/index.js'), 'utf8')).toContain("from './tenant.js'");

    const validate = await tether(['validate', '-c', config]);
    expect(validate.stderr).toBe('');
    expect(validate.code).toBe(0);
    expect(validate.stdout).toContain(`  select   ${NAME} → least-connections`);
    const listed = await tether(['plugins', '--json', '-c', config]);
    expect((JSON.parse(listed.stdout) as { name: string; source: string }[]).find((r) => r.name === NAME)).toMatchObject({ source: 'tether-strategy-tenant-affinity' });
  });

  it('shipping the .ts sources instead fails: Node does not strip types under node_modules', async () => {
    const { pkg, config } = await project();
    await cp(join(EXAMPLE_DIR, 'src'), join(pkg, 'src'), { recursive: true });
    await writeFile(join(pkg, 'package.json'), JSON.stringify({ name: 'tether-strategy-tenant-affinity', type: 'module', exports: { '.': './src/index.ts' } }));
    const validate = await tether(['validate', '-c', config]);
    expect(validate.code).toBe(1);
    expect(validate.stderr).toContain('tether: plugin "tether-strategy-tenant-affinity": failed to import: ');
    expect(validate.stderr).toContain('Stripping types is currently unsupported for files under node_modules');
  });
});
