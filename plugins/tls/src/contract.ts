/**
 * The transport half of the plugin contract, as @tether/core's index exports it today: only
 * through the `TetherPlugin` union (core/src/plugin.ts defines `Transport`, `ConnFacts`,
 * `TlsFacts` and `defineTransport`, but core/src/index.ts does not re-export them yet). Derived
 * here from that union, so they are the core's own types, not copies; when the core exports them,
 * import them from '@tether/core' instead and delete this file.
 */
import type { PluginContext, TetherPlugin } from '@tether/core';

type AnyTransportPlugin = Extract<TetherPlugin, { kind: 'transport' }>;

export type Transport = Awaited<ReturnType<AnyTransportPlugin['create']>>;
export type ConnFacts = Parameters<Transport['accept']>[1];
export type TlsFacts = NonNullable<ConnFacts['tls']>;

export interface TransportPlugin<O> extends Omit<AnyTransportPlugin, 'create'> {
  create(ctx: PluginContext, options: O): Transport | Promise<Transport>;
}

/** Identity helper, as the core's defineExtractor/defineSink: TypeScript infers the options type. */
export function defineTransport<O>(plugin: TransportPlugin<O>): TransportPlugin<O> {
  return plugin;
}
