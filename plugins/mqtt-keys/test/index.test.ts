import { PLUGIN_API_VERSION, PluginRegistry, validateOptions } from '@tether/core';
import { describe, expect, it } from 'vitest';
import plugins, { clientId, username } from '../src/index.ts';

describe('mqtt-keys package', () => {
  it('exports client-id and username as one default array of extractors for this API version', () => {
    expect(plugins).toEqual([clientId, username]);
    for (const p of plugins) expect(p).toMatchObject({ kind: 'extractor', apiVersion: PLUGIN_API_VERSION });
  });

  it('registers both without a name clash', () => {
    const registry = new PluginRegistry();
    for (const p of plugins) registry.register(p);
    expect(registry.list().map((e) => e.plugin.name)).toEqual(['client-id', 'username']);
  });

  it.each(plugins.map((p) => [p.name, p] as const))('%s takes no options', (_name, plugin) => {
    expect(() => validateOptions(plugin, { field: 'x' })).toThrow(/'field' not declared/);
  });
});
