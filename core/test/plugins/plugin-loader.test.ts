import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { PluginError } from '../../src/errors.ts';
import { createLogger } from '../../src/logger.ts';
import { ABSTAIN, PLUGIN_API_VERSION, type PluginContext, type TetherPlugin } from '../../src/plugin.ts';
import { importPluginModule, validateOptions, type LoaderContext } from '../../src/plugins/plugin-loader.ts';
import { buildChain } from '../../src/plugins/plugin-instances.ts';
import { PluginRegistry } from '../../src/plugins/plugin-registry.ts';
import { Stats } from '../../src/stats.ts';

const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '../../..');

// Plugin modules written to a temp dir, as a user would put them next to their config file. They
// are self-contained (no imports), because a file outside the repo cannot resolve @tether/core.
const MODULES: Record<string, string> = {
  'hello.mjs': `export default {
    name: 'acme:hello', kind: 'extractor', apiVersion: ${PLUGIN_API_VERSION},
    options: { prefix: { doc: 'key prefix', format: String, default: 'k-' } },
    create: (ctx, options) => ({ extract: (conn) => options.prefix + conn.connect.clientId }),
  };`,
  'typed.ts': `interface Options { readonly answer: number }
    export const typed = {
      name: 'acme:typed', kind: 'strategy' as const, apiVersion: ${PLUGIN_API_VERSION},
      options: { answer: { doc: 'n', format: 'nat', default: 42 } },
      create: (_ctx: unknown, options: Options) => ({ answer: options.answer, select: () => ({ kind: 'abstain' as const }) }),
    };`,
  'pair.mjs': `const make = (name) => ({ name, kind: 'extractor', apiVersion: ${PLUGIN_API_VERSION}, create: () => ({ extract: () => name }) });
    export const first = make('acme:first');
    export const second = make('acme:second');
    export default [first, second];`,
  'mixed.mjs': `export const ex = { name: 'acme:mixed-ex', kind: 'extractor', apiVersion: ${PLUGIN_API_VERSION}, create: () => ({ extract: () => 'm' }) };
    export const sink = { name: 'acme:mixed-sink', kind: 'sink', apiVersion: ${PLUGIN_API_VERSION}, create: () => ({ attach: (_c, _b, up) => up }) };`,
  'nothing.mjs': `export const answer = 42; export default { name: 'not-a-plugin' };`,
  'explodes.mjs': `throw new Error('boom at import');`,
  'future.mjs': `export default { name: 'acme:future', kind: 'sink', apiVersion: ${PLUGIN_API_VERSION + 1}, create: () => ({}) };`,
  'clash.mjs': `export default { name: 'acme:hello', kind: 'extractor', apiVersion: ${PLUGIN_API_VERSION}, create: () => ({ extract: () => 'x' }) };`,
};

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'tether-plugins-'));
  for (const [name, text] of Object.entries(MODULES)) writeFileSync(join(dir, name), text);
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});
afterEach(() => {
  vi.useRealTimers();
});

const strategy = (name: string, extra: Partial<TetherPlugin> = {}): TetherPlugin =>
  ({ name, kind: 'strategy', apiVersion: PLUGIN_API_VERSION, create: () => ({ select: () => ABSTAIN }), ...extra }) as TetherPlugin;

function loader(registry = new PluginRegistry(), baseDir = dir): LoaderContext & { stats: Stats; controller: AbortController } {
  const controller = new AbortController();
  return { registry, baseDir, log: createLogger('silent'), stats: new Stats(), now: () => 1234, signal: controller.signal, backends: [], controller };
}

async function rejection(promise: Promise<unknown>): Promise<PluginError> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(PluginError);
    return err as PluginError;
  }
  throw new Error('expected a PluginError');
}

describe('importPluginModule', () => {
  it('imports a .mjs file by relative path and registers its default export under the path', async () => {
    const registry = new PluginRegistry();
    const plugins = await importPluginModule('./hello.mjs', { registry, baseDir: dir });
    expect(plugins.map((p) => p.name)).toEqual(['acme:hello']);
    expect(registry.list().map((e) => [e.plugin.name, e.source])).toEqual([['acme:hello', './hello.mjs']]);
  });

  it('imports a .ts file by absolute path and finds named exports', async () => {
    const registry = new PluginRegistry();
    const plugins = await importPluginModule(join(dir, 'typed.ts'), { registry, baseDir: '/nowhere' });
    expect(plugins.map((p) => [p.name, p.kind])).toEqual([['acme:typed', 'strategy']]);
    expect(registry.get('acme:typed')).toBe(plugins[0]);
  });

  it('registers each plugin once when it is both in the default array and a named export', async () => {
    const plugins = await importPluginModule('./pair.mjs', { registry: new PluginRegistry(), baseDir: dir });
    expect(plugins.map((p) => p.name)).toEqual(['acme:first', 'acme:second']);
  });

  it('resolves a package name from baseDir like require() would', async () => {
    const registry = new PluginRegistry();
    const plugins = await importPluginModule('@tether/strategy-least-connections', { registry, baseDir: REPO_ROOT });
    expect(plugins.map((p) => p.name)).toEqual(['least-connections']);
    expect(registry.list()[0]?.source).toBe('@tether/strategy-least-connections');
  });

  it.each([
    ['a missing path', './missing.mjs', /failed to import/],
    ['a missing package', '@acme/tether-plugin-that-does-not-exist', /cannot be found from/],
    ['a module that throws while loading', './explodes.mjs', /failed to import: boom at import/],
    ['a module without plugins', './nothing.mjs', /exports no plugin/],
  ])('fails with TETHER_ERR_PLUGIN_LOAD for %s', async (_name, specifier, message) => {
    const err = await rejection(importPluginModule(specifier, { registry: new PluginRegistry(), baseDir: dir }));
    expect(err.code).toBe('TETHER_ERR_PLUGIN_LOAD');
    expect(err.plugin).toBe(specifier);
    expect(err.phase).toBe('load');
    expect(err.message).toMatch(message);
  });

  it('applies the registry checks to loaded plugins (wrong apiVersion)', async () => {
    const err = await rejection(importPluginModule('./future.mjs', { registry: new PluginRegistry(), baseDir: dir }));
    expect(err.code).toBe('TETHER_ERR_PLUGIN_API_VERSION');
    expect(err.plugin).toBe('acme:future');
  });

  it('rejects a module whose plugin name clashes with one already registered', async () => {
    const registry = new PluginRegistry();
    await importPluginModule('./hello.mjs', { registry, baseDir: dir });
    const err = await rejection(importPluginModule('./clash.mjs', { registry, baseDir: dir }));
    expect(err.code).toBe('TETHER_ERR_PLUGIN_DUPLICATE');
    expect(err.message).toContain('./hello.mjs');
    expect(err.message).toContain('./clash.mjs');
  });
});

describe('validateOptions', () => {
  const plugin = strategy('acme:opts', {
    options: {
      size: { doc: 'entries', format: 'nat', default: 10 },
      mode: { doc: 'mode', format: ['a', 'b'], default: 'a' },
    },
  } as Partial<TetherPlugin>);

  it('fills defaults and keeps given values', () => {
    expect(validateOptions(plugin, {})).toEqual({ size: 10, mode: 'a' });
    expect(validateOptions(plugin, { size: 3, mode: 'b' })).toEqual({ size: 3, mode: 'b' });
  });

  it.each([
    ['an unknown option', { colour: 'red' }, /configuration param 'colour' not declared/],
    ['a bad number', { size: -3 }, /size: must be a positive integer/],
    ['a value outside the enumeration', { mode: 'c' }, /mode: must be one of the possible values: \["a","b"\]/],
  ])('rejects %s, naming the plugin and the option', (_name, options, message) => {
    let err: unknown;
    try {
      validateOptions(plugin, options);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(PluginError);
    expect((err as PluginError).code).toBe('TETHER_ERR_PLUGIN_OPTIONS');
    expect((err as PluginError).message).toMatch(/^plugin "acme:opts": invalid options: /);
    expect((err as PluginError).message).toMatch(message);
  });

  it('rejects any option for a plugin that declares none', () => {
    expect(() => validateOptions(strategy('acme:bare'), { x: 1 })).toThrow(/plugin "acme:bare": invalid options: .*'x' not declared/);
  });

  it('reports several bad options on one line', () => {
    expect(() => validateOptions(plugin, { size: -1, mode: 'z' })).toThrow(/size: .*; .*mode: |mode: .*; .*size: /);
  });
});

describe('buildChain', () => {
  it('creates the plugins in config order with validated options and their own context', async () => {
    const seen: { name: string; ctx: PluginContext; options: unknown }[] = [];
    const record = (name: string): TetherPlugin =>
      strategy(name, {
        options: { weight: { doc: 'w', format: 'nat', default: 1 } },
        create: (ctx: PluginContext, options: unknown) => {
          seen.push({ name, ctx, options });
          return { select: () => ABSTAIN };
        },
      } as Partial<TetherPlugin>);
    const registry = new PluginRegistry();
    registry.register(record('acme:geo-fence'));
    registry.register(record('b'));
    const ctx = loader(registry);
    const chain = await buildChain('strategy', [{ use: 'b', options: { weight: 5 } }, { use: 'acme:geo-fence', options: {} }], ctx);

    expect(chain.map((c) => c.name)).toEqual(['b', 'acme:geo-fence']);
    expect(seen.map((s) => [s.name, s.options])).toEqual([['b', { weight: 5 }], ['acme:geo-fence', { weight: 1 }]]);
    const geo = seen[1]!.ctx;
    expect(geo.now()).toBe(1234);
    // Its own lifetime, which also ends with the balancer's.
    expect(geo.signal.aborted).toBe(false);
    ctx.controller.abort();
    expect(geo.signal.aborted).toBe(true);
    expect(geo.log.bindings()).toMatchObject({ plugin: 'acme:geo-fence' });
    // Counter names are snake_case and prefixed with the plugin name, punctuation folded to `_`.
    geo.stats.inc('hits');
    geo.stats.inc('hits', 2);
    expect(ctx.stats.get('acme_geo_fence_hits')).toBe(3);
  });

  it('awaits an async create()', async () => {
    const product = { select: () => ABSTAIN };
    const registry = new PluginRegistry();
    registry.register(strategy('slow', { create: async () => product } as Partial<TetherPlugin>));
    const [entry] = await buildChain('strategy', [{ use: 'slow', options: {} }], loader(registry));
    expect(entry?.product).toBe(product);
  });

  it.each([
    ['throws', () => { throw new Error('no database'); }],
    ['rejects', () => Promise.reject(new Error('no database'))],
  ])('wraps a create() that %s in TETHER_ERR_PLUGIN_CREATE', async (_name, create) => {
    const registry = new PluginRegistry();
    registry.register(strategy('fragile', { create } as Partial<TetherPlugin>));
    const err = await rejection(buildChain('strategy', [{ use: 'fragile', options: {} }], loader(registry)));
    expect(err.code).toBe('TETHER_ERR_PLUGIN_CREATE');
    expect(err.plugin).toBe('fragile');
    expect(err.message).toMatch(/create\(\) failed: no database/);
  });

  it('fails a create() that never settles after 10 s with TETHER_ERR_PLUGIN_INIT_TIMEOUT', async () => {
    vi.useFakeTimers();
    const registry = new PluginRegistry();
    registry.register(strategy('stuck', { create: () => new Promise(() => {}) } as Partial<TetherPlugin>));
    const outcome = rejection(buildChain('strategy', [{ use: 'stuck', options: {} }], loader(registry)));
    await vi.advanceTimersByTimeAsync(9_999);
    let settled = false;
    void outcome.then(() => (settled = true));
    await vi.advanceTimersByTimeAsync(0);
    expect(settled).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    const err = await outcome;
    expect(err.code).toBe('TETHER_ERR_PLUGIN_INIT_TIMEOUT');
    expect(err.message).toMatch(/within 10000 ms/);
  });

  it('rejects bad options before create() runs', async () => {
    const create = vi.fn(() => ({ select: () => ABSTAIN }));
    const registry = new PluginRegistry();
    registry.register(strategy('strict', { options: { n: { doc: 'n', format: 'nat', default: 1 } }, create } as Partial<TetherPlugin>));
    const err = await rejection(buildChain('strategy', [{ use: 'strict', options: { n: 'many' } }], loader(registry)));
    expect(err.code).toBe('TETHER_ERR_PLUGIN_OPTIONS');
    expect(err.message).toMatch(/plugin "strict".*n: must be a positive integer/);
    expect(create).not.toHaveBeenCalled();
  });

  it('rejects a plugin configured in the wrong chain', async () => {
    const registry = new PluginRegistry();
    registry.register(strategy('sticky'));
    const err = await rejection(buildChain('extractor', [{ use: 'sticky', options: {} }], loader(registry)));
    expect(err.code).toBe('TETHER_ERR_PLUGIN_KIND');
    expect(err.message).toMatch(/is a strategy, but was configured as a extractor/);
  });

  it('lists the known plugins of the right kind when a name is unknown', async () => {
    const registry = new PluginRegistry();
    registry.register(strategy('stick-table'));
    registry.register(strategy('least-connections'));
    registry.register({ name: 'client-id', kind: 'extractor', apiVersion: PLUGIN_API_VERSION, create: () => ({ extract: () => undefined }) });
    const err = await rejection(buildChain('strategy', [{ use: 'sticky-table', options: {} }], loader(registry)));
    expect(err.code).toBe('TETHER_ERR_PLUGIN_UNKNOWN');
    expect(err.plugin).toBe('sticky-table');
    expect(err.message).toContain('known: stick-table, least-connections');
    expect(err.message).not.toContain('client-id');
  });

  it('says "none" when no plugin of that kind is known', async () => {
    const err = await rejection(buildChain('sink', [{ use: 'acme-tls-wrapper', options: {} }], loader()));
    expect(err.code).toBe('TETHER_ERR_PLUGIN_UNKNOWN');
    expect(err.message).toContain('known: none');
  });

  // KNOWN SOURCE BUG (fails today): require.resolve() returns a Node built-in's bare id ('tls'),
  // which importPluginModule turns into file://<cwd>/tls, so an unknown plugin that shares a name
  // with a built-in module (tls, http, cluster...) gets a confusing "failed to import ... file:///"
  // load error instead of the "not a known sink (known: ...)" answer every other unknown name gets.
  it.each(['tls', 'http'])('treats an unknown name that is also a Node built-in (%s) as unknown', async (name) => {
    const registry = new PluginRegistry();
    registry.register({ name: 'proxy-protocol', kind: 'sink', apiVersion: PLUGIN_API_VERSION, create: () => ({ attach: (_c, _b, up) => up }) });
    const err = await rejection(buildChain('sink', [{ use: name, options: {} }], loader(registry)));
    expect(err.message).not.toContain('file://');
    expect(err.code).toBe('TETHER_ERR_PLUGIN_UNKNOWN');
    expect(err.message).toContain('known: proxy-protocol');
  });

  it('loads a chain entry given as a path, then knows it by name', async () => {
    const ctx = loader();
    const chain = await buildChain('extractor', [{ use: './hello.mjs', options: { prefix: 'p:' } }], ctx);
    expect(chain.map((c) => c.name)).toEqual(['acme:hello']);
    const conn = { connect: { clientId: 'dev1' } } as never;
    expect(chain[0]!.product.extract(conn)).toBe('p:dev1');
    const again = await buildChain('extractor', [{ use: 'acme:hello', options: {} }], ctx);
    expect(again[0]!.product.extract(conn)).toBe('k-dev1');
  });

  it('picks the one plugin of the wanted kind from a module that exports several kinds', async () => {
    const chain = await buildChain('sink', [{ use: './mixed.mjs', options: {} }], loader());
    expect(chain.map((c) => c.name)).toEqual(['acme:mixed-sink']);
  });

  it('asks for a name when a path exports several plugins of the wanted kind', async () => {
    const err = await rejection(buildChain('extractor', [{ use: './pair.mjs', options: {} }], loader()));
    expect(err.code).toBe('TETHER_ERR_PLUGIN_KIND');
    expect(err.message).toContain('exports 2 extractor plugins');
    expect(err.message).toContain('acme:first, acme:second');
  });

  it('keeps the load error for a path that does not exist (no "unknown plugin" guess)', async () => {
    const err = await rejection(buildChain('extractor', [{ use: './missing.mjs', options: {} }], loader()));
    expect(err.code).toBe('TETHER_ERR_PLUGIN_LOAD');
  });
});
