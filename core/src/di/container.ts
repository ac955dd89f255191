import 'reflect-metadata';
import { container as rootContainer, instanceCachingFactory, type DependencyContainer } from 'tsyringe';
import type { Logger } from 'pino';
import { BackendPool } from '../backend/backend-pool.ts';
import { HealthChecker } from '../backend/health-checker.ts';
import type { TetherConfig } from '../config/types.ts';
import { ConfigError } from '../errors.ts';
import { StrategyChain } from '../pipeline/strategy-chain.ts';
import { buildChain, importPluginModule } from '../plugins/plugin-loader.ts';
import type { PluginRegistry } from '../plugins/plugin-registry.ts';
import type { PeerChannel } from '../plugin.ts';
import { Stats } from '../stats.ts';
import { TetherServer } from '../tether-server.ts';
import { Tokens, type Token } from './tokens.ts';

export interface TetherOptions {
  readonly config: TetherConfig;
  readonly registry: PluginRegistry;
  readonly log: Logger;
  readonly now?: () => number;
  /** With several workers: opens a plugin's peer channel (WorkerPeers.channel); absent in one process. */
  readonly peers?: (channel: string) => PeerChannel;
}

/**
 * The composition root. Plugin chains are built here in config order and registered as values
 * (never through registration-order multi-injection); the server is resolved from one child
 * container per instance, so several balancers can live in one process.
 */
export async function createTether(options: TetherOptions): Promise<{ container: DependencyContainer; server: TetherServer }> {
  const { config, registry, log } = options;
  const container = rootContainer.createChildContainer();
  const stats = new Stats();
  const lifetime = new AbortController();
  const now = options.now ?? Date.now;
  container.register(Tokens.Config, { useValue: config });
  container.register(Tokens.Logger, { useValue: log });
  container.register(Tokens.Stats, { useValue: stats });
  container.register(Tokens.Clock, { useValue: now });
  container.register(Tokens.Lifetime, { useValue: lifetime });
  container.register(Tokens.Registry, { useValue: registry });
  const pool = new BackendPool(config.backends);
  container.register(Tokens.BackendPool, { useValue: pool });
  const checkType = new Map(config.backends.map((b) => [b.id, b.check ?? config.healthCheck.type]));
  container.register(Tokens.HealthChecker, {
    useValue: new HealthChecker(pool, config.healthCheck, (id) => checkType.get(id) ?? 'none', log.child({ component: 'health' }), stats),
  });

  // Plugins created before a later one fails would keep their timers and watchers: stop them.
  try {
    for (const specifier of config.plugins) await importPluginModule(specifier, { registry, baseDir: config.baseDir });
    const loader = { registry, baseDir: config.baseDir, log, stats, now, signal: lifetime.signal, backends: pool.all(), ...(options.peers ? { peers: options.peers } : {}) };
    const strategies = await buildChain('strategy', config.select, loader);
    const last = strategies.at(-1);
    if (!last || !last.product.alwaysAnswers || (last.when ?? 'always') !== 'always') {
      throw new ConfigError(`select: the strategy chain [${config.select.map((e) => e.use).join(', ')}] can leave a client without a backend; end it with a strategy that always answers, such as least-connections`);
    }
    container.register(Tokens.StrategyChain, { useValue: new StrategyChain(strategies, log) });
    container.register(Tokens.ExtractorChain, { useValue: await buildChain('extractor', config.key, loader) });
    container.register(Tokens.SinkChain, { useValue: await buildChain('sink', config.sinks, loader) });
    const listeners = [];
    for (const listener of config.listeners) listeners.push({ name: listener.name, transports: await buildChain('transport', listener.transports, loader) });
    if (listeners.length === 0) throw new ConfigError('no listener: set listen (TETHER_LISTEN, --listen) or add listeners');
    container.register(Tokens.Listeners, { useValue: listeners });
  } catch (err) {
    lifetime.abort();
    throw err;
  }
  container.register(Tokens.Server, {
    useFactory: instanceCachingFactory((c) => new TetherServer({
      config: resolve(c, Tokens.Config),
      log: resolve(c, Tokens.Logger),
      stats: resolve(c, Tokens.Stats),
      pool: resolve(c, Tokens.BackendPool),
      extractors: resolve(c, Tokens.ExtractorChain),
      strategies: resolve(c, Tokens.StrategyChain),
      sinks: resolve(c, Tokens.SinkChain),
      lifetime: resolve(c, Tokens.Lifetime),
      health: resolve(c, Tokens.HealthChecker),
      listeners: resolve(c, Tokens.Listeners),
    })),
  });
  return { container, server: resolve(container, Tokens.Server) };
}

export function resolve<T>(c: DependencyContainer, token: Token<T>): T {
  return c.resolve<T>(token);
}
