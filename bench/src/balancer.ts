import { createLogger, createTether, loadConfig, TetherError, Tokens, type ChainEntry, type ConnInfo, type PluginRegistry } from '@tether/core';
import { ChainError } from './errors.ts';
import type { ChainSpec } from './scenario.ts';
import type { TimelineBackend } from './timeline.ts';

/**
 * One balancer under test, assembled by Tether's own composition root (`createTether`) from a
 * configuration, exactly as `tether start` does: plugin modules imported, options validated by
 * each plugin's schema, the strategy chain built by the plugin loader and checked (it must end
 * with a strategy that always answers), the extractor chain for the key. Only the clock is ours,
 * so stick-table expiry runs in simulated time. Nothing listens: the server is never started.
 */
export type Balancer = Awaited<ReturnType<typeof buildBalancer>>;

export interface BalancerOptions {
  readonly registry: PluginRegistry;
  readonly backends: readonly TimelineBackend[];
  readonly chain: ChainSpec;
  readonly key: readonly ChainEntry[];
  readonly plugins: readonly string[];
  readonly now: () => number;
}

export async function buildBalancer(options: BalancerOptions) {
  const { registry, chain, now } = options;
  let built;
  try {
    const config = loadConfig({
      // Not process.env: a developer's TETHER_* variables must not change benchmark results.
      env: {},
      overrides: {
        // Addresses are never dialled; each backend just needs a distinct valid one.
        backends: options.backends.map((b, i) => ({
          name: b.name,
          address: `127.0.0.1:${20_000 + i}`,
          weight: b.weight,
          // A backend that joins later waits in maintenance: configured, but offered to nobody.
          state: b.initiallyPresent ? 'ready' : 'maint',
        })),
        select: chain.select,
        key: options.key,
        plugins: options.plugins,
        sinks: [],
        'log.level': 'silent',
      },
    });
    built = await createTether({ config, registry, log: createLogger('silent'), now });
  } catch (err) {
    if (err instanceof TetherError) throw new ChainError(chain.name, err);
    throw err;
  }
  const { container, server } = built;
  const extractors = container.resolve(Tokens.ExtractorChain);
  return {
    name: chain.name,
    pool: server.pool,
    chain: server.strategies,
    stats: server.stats,
    /** The extractor chain, as the pipeline runs it: the first non-empty key wins. */
    identify(conn: ConnInfo): void {
      for (const { name, product } of extractors) {
        const key = product.extract(conn);
        if (key) {
          conn.key = key;
          conn.keySource = name;
          return;
        }
      }
    },
    /** Stops the plugins' timers (the stick table's sweep) and closes the strategies. */
    close: () => server.close(),
  };
}
