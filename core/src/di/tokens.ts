import type { Logger } from 'pino';
import type { InjectionToken } from 'tsyringe';
import type { BackendPool } from '../backend/backend-pool.ts';
import type { HealthChecker } from '../backend/health-checker.ts';
import type { TetherConfig } from '../config/types.ts';
import type { ListenerRuntime } from '../pipeline/connection-pipeline.ts';
import type { StrategyChain } from '../pipeline/strategy-chain.ts';
import type { Extractor, Sink } from '../plugin.ts';
import type { Named } from '../plugins/plugin-loader.ts';
import type { PluginRegistry } from '../plugins/plugin-registry.ts';
import type { Stats } from '../stats.ts';
import type { TetherServer } from '../tether-server.ts';

/** A symbol that carries the type it resolves to (Marble.js's context tokens). */
export type Token<T> = InjectionToken<T> & symbol & { readonly __type?: T };

function token<T>(description: string): Token<T> {
  return Symbol(description) as Token<T>;
}

/** Every DI token, in one leaf module so imports never cycle. */
export const Tokens = {
  Config: token<TetherConfig>('tether.Config'),
  Logger: token<Logger>('tether.Logger'),
  Stats: token<Stats>('tether.Stats'),
  Clock: token<() => number>('tether.Clock'),
  Lifetime: token<AbortController>('tether.Lifetime'),
  Registry: token<PluginRegistry>('tether.PluginRegistry'),
  BackendPool: token<BackendPool>('tether.BackendPool'),
  HealthChecker: token<HealthChecker>('tether.HealthChecker'),
  ExtractorChain: token<readonly Named<Extractor>[]>('tether.ExtractorChain'),
  StrategyChain: token<StrategyChain>('tether.StrategyChain'),
  SinkChain: token<readonly Named<Sink>[]>('tether.SinkChain'),
  Listeners: token<readonly ListenerRuntime[]>('tether.Listeners'),
  Server: token<TetherServer>('tether.Server'),
} as const;
