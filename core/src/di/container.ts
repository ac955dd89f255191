import 'reflect-metadata';
import { container as rootContainer, instanceCachingFactory, type DependencyContainer } from 'tsyringe';
import type { Logger } from 'pino';
import { BackendPool } from '../backend/backend-pool.ts';
import type { TetherConfig } from '../config/types.ts';
import type { LoaderContext } from '../plugins/plugin-loader.ts';
import type { PluginRegistry } from '../plugins/plugin-registry.ts';
import type { PeerChannel } from '../plugin.ts';
import { buildGeneration, type GenerationParts } from '../reload/generation.ts';
import { Stats } from '../stats.ts';
import { TetherServer, type ConfigSource } from '../tether-server.ts';
import { Tokens, type Token } from './tokens.ts';

export interface TetherOptions {
  readonly config: TetherConfig;
  readonly registry: PluginRegistry;
  readonly log: Logger;
  readonly now?: () => number;
  /** With several workers: opens a plugin's peer channel (WorkerPeers.channel); absent in one process. */
  readonly peers?: (channel: string) => PeerChannel;
  /** Closes a channel `peers` opened, when a reload retires its plugin. */
  readonly releasePeers?: (channel: PeerChannel) => void;
  /** Where `reload()` reads the configuration again; without it a reload must be given the configuration. */
  readonly source?: ConfigSource;
}

/**
 * The composition root. The first generation's plugin chains are built here in config order and
 * registered as values (never through registration-order multi-injection); the server is resolved
 * from one child container per instance, so several balancers can live in one process. Later
 * generations (reloads) are built by the server with the same loader.
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
  const loader: LoaderContext = {
    registry, baseDir: config.baseDir, log, stats, now, signal: lifetime.signal, backends: pool.all(),
    ...(options.peers ? { peers: options.peers } : {}),
    ...(options.releasePeers ? { releasePeers: options.releasePeers } : {}),
  };
  let generation: GenerationParts;
  try {
    ({ parts: generation } = await buildGeneration(config, loader));
  } catch (err) {
    // Plugins created before a later one failed are already retired; stop anything else too.
    lifetime.abort();
    throw err;
  }
  container.register(Tokens.StrategyChain, { useValue: generation.strategies });
  container.register(Tokens.ExtractorChain, { useValue: generation.extractors });
  container.register(Tokens.SinkChain, { useValue: generation.sinks });
  container.register(Tokens.Listeners, { useValue: generation.listeners });
  container.register(Tokens.Server, {
    useFactory: instanceCachingFactory((c) => new TetherServer({
      log: resolve(c, Tokens.Logger),
      stats: resolve(c, Tokens.Stats),
      pool: resolve(c, Tokens.BackendPool),
      lifetime: resolve(c, Tokens.Lifetime),
      loader,
      generation,
      ...(options.source ? { source: options.source } : {}),
    })),
  });
  return { container, server: resolve(container, Tokens.Server) };
}

export function resolve<T>(c: DependencyContainer, token: Token<T>): T {
  return c.resolve<T>(token);
}
