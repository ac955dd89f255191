import { PluginError } from '../errors.ts';
import { PLUGIN_API_VERSION, type PluginKind, type TetherPlugin } from '../plugin.ts';

const KINDS: readonly PluginKind[] = ['transport', 'extractor', 'strategy', 'sink', 'provider'];

/**
 * Known plugins by name. Registration checks the metadata the way Fastify checks fastify-plugin
 * metadata: a wrong kind, contract version or duplicate name is a clear error at start, never a
 * surprise on the first connection.
 */
export class PluginRegistry {
  readonly #plugins = new Map<string, { plugin: TetherPlugin; source: string }>();

  register(plugin: TetherPlugin, source = 'built-in'): void {
    checkShape(plugin, source);
    const existing = this.#plugins.get(plugin.name);
    if (existing && existing.plugin !== plugin) {
      throw new PluginError('TETHER_ERR_PLUGIN_DUPLICATE', plugin.name, 'register', `is defined twice (${existing.source} and ${source})`);
    }
    this.#plugins.set(plugin.name, { plugin, source });
  }

  get(name: string): TetherPlugin | undefined {
    return this.#plugins.get(name)?.plugin;
  }

  list(): readonly { plugin: TetherPlugin; source: string }[] {
    return [...this.#plugins.values()];
  }
}

export function isPlugin(value: unknown): value is TetherPlugin {
  return typeof value === 'object' && value !== null && 'kind' in value && 'create' in value && 'name' in value;
}

function checkShape(plugin: TetherPlugin, source: string): void {
  const name = typeof plugin.name === 'string' && plugin.name ? plugin.name : `(unnamed, from ${source})`;
  if (!KINDS.includes(plugin.kind)) {
    throw new PluginError('TETHER_ERR_PLUGIN_KIND', name, 'register', `has kind "${String(plugin.kind)}"; expected one of ${KINDS.join(', ')}`);
  }
  if (plugin.apiVersion !== PLUGIN_API_VERSION) {
    throw new PluginError('TETHER_ERR_PLUGIN_API_VERSION', name, 'register',
      `was written for plugin API version ${String(plugin.apiVersion)}, but this Tether implements version ${PLUGIN_API_VERSION}`);
  }
  if (typeof plugin.create !== 'function') {
    throw new PluginError('TETHER_ERR_PLUGIN_SHAPE', name, 'register', 'has no create() function');
  }
}
