import type { TetherConfig } from '../config/types.ts';
import { ConfigError } from '../errors.ts';
import type { ListenerRuntime } from '../pipeline/connection-pipeline.ts';
import { StrategyChain } from '../pipeline/strategy-chain.ts';
import type { Extractor, Provider, Sink } from '../plugin.ts';
import { ChainBuilder, retire, type PluginInstance } from '../plugins/plugin-instances.ts';
import { importPluginModule, type LoaderContext, type Named } from '../plugins/plugin-loader.ts';

/**
 * What one configuration makes of the plugins: the chains every connection accepted under it runs
 * through. A reload builds the next one next to the running one and swaps them; connections keep
 * the one that accepted them.
 */
export interface GenerationParts {
  readonly config: TetherConfig;
  readonly extractors: readonly Named<Extractor>[];
  readonly strategies: StrategyChain;
  readonly sinks: readonly Named<Sink>[];
  readonly listeners: readonly ListenerRuntime[];
  /** The backend providers; a reload that keeps an entry keeps its product (and what it discovered). */
  readonly providers: readonly Named<Provider>[];
  /** Every plugin product in the chains above, with its own lifetime. */
  readonly instances: readonly PluginInstance[];
}

export interface BuiltGeneration {
  readonly parts: GenerationParts;
  /** Products this build created: to retire if the generation is abandoned. */
  readonly created: readonly PluginInstance[];
  /** Products of the previous generation this one does not use: to retire once it is in place. */
  readonly leftovers: readonly PluginInstance[];
}

/**
 * Builds the chains of `config`, reusing the products of `previous` whose entries did not change.
 * Fails (with every product it created already retired) on an unknown plugin, bad plugin options,
 * a strategy chain that can leave a client without a backend, or no listener.
 */
export async function buildGeneration(config: TetherConfig, loader: LoaderContext, previous: readonly PluginInstance[] = []): Promise<BuiltGeneration> {
  const ctx = { ...loader, baseDir: config.baseDir };
  for (const specifier of config.plugins) await importPluginModule(specifier, ctx);
  const builder = new ChainBuilder(ctx, previous);
  try {
    const providers = await builder.chain('provider', config.providers, 'providers');
    const strategies = await builder.chain('strategy', config.select, 'select');
    const last = strategies.at(-1);
    if (!last || !last.product.alwaysAnswers || (last.when ?? 'always') !== 'always') {
      throw new ConfigError(`select: the strategy chain [${config.select.map((e) => e.use).join(', ')}] can leave a client without a backend; end it with a strategy that always answers, such as least-connections`);
    }
    const extractors = await builder.chain('extractor', config.key, 'key');
    const sinks = await builder.chain('sink', config.sinks, 'sinks');
    const listeners: ListenerRuntime[] = [];
    for (const listener of config.listeners) {
      listeners.push({ name: listener.name, transports: await builder.chain('transport', listener.transports, `listener:${listener.name}`), websocket: listener.websocket });
    }
    if (listeners.length === 0) throw new ConfigError('no listener: set listen (TETHER_LISTEN, --listen) or add listeners');
    const parts = { config, providers, extractors, strategies: new StrategyChain(strategies, loader.log), sinks, listeners, instances: builder.instances };
    return { parts, created: builder.created, leftovers: builder.leftovers() };
  } catch (err) {
    await retire(builder.created, loader.log, loader.releasePeers);
    throw err;
  }
}
