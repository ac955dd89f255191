import { createRequire, isBuiltin } from 'node:module';
import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import convict from 'convict';
import type { Logger } from 'pino';
import type { ChainCondition } from '../config/types.ts';
import { describe, PluginError } from '../errors.ts';
import type { Stats } from '../stats.ts';
import type { Backend, Extractor, PeerChannel, PluginContext, PluginKind, Provider, Sink, Strategy, TetherPlugin, Transport } from '../plugin.ts';
import { isPlugin, PluginRegistry } from './plugin-registry.ts';

/** How long a plugin's create() may take before start fails (Fastify's pluginTimeout). */
const CREATE_TIMEOUT_MS = 10_000;

export interface Named<T> {
  readonly name: string;
  readonly product: T;
  /** Which clients this entry applies to (config `when`); absent means all. */
  readonly when?: ChainCondition;
}

export interface Products {
  transport: Transport;
  extractor: Extractor;
  strategy: Strategy;
  sink: Sink;
  provider: Provider;
}

export interface LoaderContext {
  readonly registry: PluginRegistry;
  readonly baseDir: string;
  readonly log: Logger;
  readonly stats: Stats;
  readonly now: () => number;
  readonly signal: AbortSignal;
  readonly backends: readonly Backend[];
  /** With several workers: opens the peer channel of one chain entry (see PeerChannel). */
  readonly peers?: (channel: string) => PeerChannel;
  /** Closes a channel `peers` opened, once its product is retired by a reload. */
  readonly releasePeers?: (channel: PeerChannel) => void;
}

/** Imports a plugin module (a path or a package name) and registers every plugin it exports. */
export async function importPluginModule(specifier: string, ctx: Pick<LoaderContext, 'registry' | 'baseDir'>): Promise<TetherPlugin[]> {
  let url: string;
  try {
    // A bare name such as "tls" resolves to Node's own module, never to a plugin.
    if (!looksLikePath(specifier) && isBuiltin(specifier)) throw new Error(`"${specifier}" is a Node.js built-in module`);
    url = looksLikePath(specifier)
      ? pathToFileURL(isAbsolute(specifier) ? specifier : resolve(ctx.baseDir, specifier)).href
      : pathToFileURL(createRequire(resolve(ctx.baseDir, 'noop.js')).resolve(specifier)).href;
  } catch (err) {
    // Node appends a multi-line "Require stack"; the first line says all the user needs.
    throw new PluginError('TETHER_ERR_PLUGIN_LOAD', specifier, 'load', `cannot be found from ${ctx.baseDir}: ${describe(err).split('\n')[0]}`, { cause: err });
  }
  let module: Record<string, unknown>;
  try {
    module = (await import(url)) as Record<string, unknown>;
  } catch (err) {
    throw new PluginError('TETHER_ERR_PLUGIN_LOAD', specifier, 'load', `failed to import: ${describe(err)}`, { cause: err });
  }
  const exported = [module.default, ...Object.values(module)].flat().filter(isPlugin);
  const plugins = [...new Set(exported)];
  if (plugins.length === 0) {
    throw new PluginError('TETHER_ERR_PLUGIN_LOAD', specifier, 'load', 'exports no plugin (expected a default export made with defineExtractor, defineStrategy or defineSink)');
  }
  for (const plugin of plugins) ctx.registry.register(plugin, specifier);
  return plugins;
}

/**
 * Runs a plugin's `create` with its context: a child logger and a counter scope named after it,
 * and, on a reload that replaces an earlier product of the same plugin, that product as `previous`.
 */
export async function createProduct(plugin: TetherPlugin, options: Record<string, unknown>, ctx: LoaderContext, extra: { readonly peers?: PeerChannel | undefined; readonly previous?: unknown }): Promise<unknown> {
  const context: PluginContext = {
    log: ctx.log.child({ plugin: plugin.name }),
    stats: ctx.stats.scope(plugin.name.replace(/[^a-zA-Z0-9]+/g, '_')),
    now: ctx.now,
    signal: ctx.signal,
    backends: ctx.backends,
    ...(extra.peers ? { peers: extra.peers } : {}),
    ...(extra.previous !== undefined ? { previous: extra.previous } : {}),
  };
  return withTimeout(Promise.resolve().then(() => plugin.create(context, options as never)), plugin.name);
}

export async function resolvePlugin(kind: PluginKind, use: string, ctx: LoaderContext): Promise<TetherPlugin> {
  let plugin = ctx.registry.get(use);
  if (!plugin) {
    let loaded: TetherPlugin[];
    try {
      loaded = await importPluginModule(use, ctx);
    } catch (err) {
      if (looksLikePath(use) || !(err instanceof PluginError) || err.phase !== 'load' || !/cannot be found/.test(err.message)) throw err;
      const known = ctx.registry.list().filter((p) => p.plugin.kind === kind).map((p) => p.plugin.name);
      throw new PluginError('TETHER_ERR_PLUGIN_UNKNOWN', use, 'resolve', `is not a known ${kind} (known: ${known.join(', ') || 'none'}) nor an installed package; give a path or package name to load one`);
    }
    const candidates = loaded.filter((p) => p.kind === kind);
    if (candidates.length !== 1) {
      throw new PluginError('TETHER_ERR_PLUGIN_KIND', use, 'resolve', `exports ${candidates.length} ${kind} plugins; name the one you mean (${candidates.map((p) => p.name).join(', ') || 'none'}) and list the module under "plugins"`);
    }
    plugin = candidates[0]!;
  }
  if (plugin.kind !== kind) {
    throw new PluginError('TETHER_ERR_PLUGIN_KIND', plugin.name, 'resolve', `is a ${plugin.kind}, but was configured as a ${kind}`);
  }
  return plugin;
}

/** Validates a plugin's options with its own convict schema; errors name the plugin and option. */
export function validateOptions(plugin: TetherPlugin, options: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const schema = plugin.options ?? {};
  try {
    const conf = convict(schema as never, { env: {}, args: [] });
    conf.load(options);
    conf.validate({ allowed: 'strict' });
    return conf.getProperties() as Record<string, unknown>;
  } catch (err) {
    throw new PluginError('TETHER_ERR_PLUGIN_OPTIONS', plugin.name, 'options', `invalid options: ${describe(err).replace(/\n/g, '; ')}`, { cause: err });
  }
}

function looksLikePath(use: string): boolean {
  return use.startsWith('.') || isAbsolute(use);
}

async function withTimeout<T>(promise: Promise<T>, name: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new PluginError('TETHER_ERR_PLUGIN_INIT_TIMEOUT', name, 'create', `create() did not finish within ${CREATE_TIMEOUT_MS} ms`)), CREATE_TIMEOUT_MS);
  });
  try {
    return await Promise.race([promise, timeout]);
  } catch (err) {
    if (err instanceof PluginError) throw err;
    throw new PluginError('TETHER_ERR_PLUGIN_CREATE', name, 'create', `create() failed: ${describe(err)}`, { cause: err });
  } finally {
    clearTimeout(timer);
  }
}
