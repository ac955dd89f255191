import type { ConnInfo, TetherPlugin } from '@tether/core';

// The transport side of the plugin contract (core/src/plugin.ts) is not exported from
// @tether/core by name yet, so its types are derived here from what is exported. Once the core
// exports `TransportPlugin`, `Transport`, `ConnFacts` and `TlsFacts`, import those instead.

/** A transport plugin (`kind: 'transport'`). */
export type TransportPlugin = Extract<TetherPlugin, { kind: 'transport' }>;
/** What a transport plugin's create() returns: `accept(socket, facts)` per connection. */
export type Transport = Awaited<ReturnType<TransportPlugin['create']>>;
/** The per-connection facts a transport may update (addresses, proxied, tls, attributes). */
export type ConnFacts = Parameters<Transport['accept']>[1];
/** What TLS termination learned about a connection. */
export type TlsFacts = NonNullable<ConnInfo['tls']>;
