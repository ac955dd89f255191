import { describe, expect, it } from 'vitest';
import { PluginError } from '../../src/errors.ts';
import { ABSTAIN, PLUGIN_API_VERSION, type TetherPlugin } from '../../src/plugin.ts';
import { isPlugin, PluginRegistry } from '../../src/plugins/plugin-registry.ts';

const strategy = (name: string, extra: Record<string, unknown> = {}): TetherPlugin =>
  ({ name, kind: 'strategy', apiVersion: PLUGIN_API_VERSION, create: () => ({ select: () => ABSTAIN }), ...extra }) as TetherPlugin;

function registerError(registry: PluginRegistry, plugin: unknown, source?: string): PluginError {
  try {
    registry.register(plugin as TetherPlugin, source);
  } catch (err) {
    expect(err).toBeInstanceOf(PluginError);
    return err as PluginError;
  }
  throw new Error('expected register() to throw');
}

describe('PluginRegistry', () => {
  it('finds a registered plugin by name and lists it with its source', () => {
    const registry = new PluginRegistry();
    const a = strategy('a');
    registry.register(a, './a.mjs');
    registry.register(strategy('b'));
    expect(registry.get('a')).toBe(a);
    expect(registry.get('missing')).toBeUndefined();
    expect(registry.list().map((e) => [e.plugin.name, e.source])).toEqual([['a', './a.mjs'], ['b', 'built-in']]);
  });

  it('accepts the same plugin object twice (a module imported from two places)', () => {
    const registry = new PluginRegistry();
    const a = strategy('a');
    registry.register(a, 'one');
    expect(() => registry.register(a, 'two')).not.toThrow();
    expect(registry.list()).toHaveLength(1);
  });

  it('rejects a second, different plugin with the same name, naming both sources', () => {
    const registry = new PluginRegistry();
    registry.register(strategy('acme:geo'), './geo-v1.mjs');
    const err = registerError(registry, strategy('acme:geo'), './geo-v2.mjs');
    expect(err.code).toBe('TETHER_ERR_PLUGIN_DUPLICATE');
    expect(err.plugin).toBe('acme:geo');
    expect(err.phase).toBe('register');
    expect(err.message).toContain('./geo-v1.mjs');
    expect(err.message).toContain('./geo-v2.mjs');
  });

  it.each([
    [PLUGIN_API_VERSION + 1, String(PLUGIN_API_VERSION + 1)],
    [0, '0'],
    [undefined, 'undefined'],
    ['1', '1'],
  ])('rejects apiVersion %j with TETHER_ERR_PLUGIN_API_VERSION', (apiVersion, shown) => {
    const err = registerError(new PluginRegistry(), strategy('old', { apiVersion }));
    expect(err.code).toBe('TETHER_ERR_PLUGIN_API_VERSION');
    expect(err.message).toContain(`plugin API version ${shown}`);
    expect(err.message).toContain(`implements version ${PLUGIN_API_VERSION}`);
  });

  it.each(['filter', undefined, 'Strategy'])('rejects kind %j with TETHER_ERR_PLUGIN_KIND listing the kinds', (kind) => {
    const err = registerError(new PluginRegistry(), strategy('odd', { kind }));
    expect(err.code).toBe('TETHER_ERR_PLUGIN_KIND');
    expect(err.message).toContain('expected one of transport, extractor, strategy, sink');
  });

  it('rejects a plugin whose create is not a function', () => {
    const err = registerError(new PluginRegistry(), strategy('lazy', { create: 'soon' }));
    expect(err.code).toBe('TETHER_ERR_PLUGIN_SHAPE');
    expect(err.message).toMatch(/no create\(\) function/);
  });

  it('names an unnamed plugin by its source in the error', () => {
    const err = registerError(new PluginRegistry(), strategy('', { apiVersion: 99 }), './mystery.mjs');
    expect(err.plugin).toBe('(unnamed, from ./mystery.mjs)');
  });

  it('leaves the registry unchanged when registration fails', () => {
    const registry = new PluginRegistry();
    registerError(registry, strategy('bad', { apiVersion: 99 }));
    expect(registry.get('bad')).toBeUndefined();
    expect(registry.list()).toHaveLength(0);
  });
});

describe('isPlugin', () => {
  it.each([
    ['a plugin', strategy('a'), true],
    ['null', null, false],
    ['a string', 'stick-table', false],
    ['an object without create', { name: 'a', kind: 'strategy' }, false],
    ['an object without kind', { name: 'a', create() {} }, false],
    ['an object without name', { kind: 'sink', create() {} }, false],
  ])('%s -> %s', (_name, value, expected) => {
    expect(isPlugin(value)).toBe(expected);
  });
});
