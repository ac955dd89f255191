/**
 * The Tether plugin contract: everything a plugin author needs, in one file.
 *
 * A plugin is a plain object (made with `defineExtractor`, `defineStrategy` or `defineSink`) that
 * names itself, says which slot it fills (`kind`), which contract version it was written for
 * (`apiVersion`), how its options look (a convict schema) and how to build its per-process product
 * (`create`). Tether calls `create` once at start and then calls the cheap per-connection hooks of
 * what it returned. Plugins never see the DI container, sockets of other connections, or RxJS.
 *
 * Besides the four connection slots, a `provider` (made with `defineProvider`) supplies backends:
 * it tells Tether the current set whenever it changes (DNS, a watched file, a service registry).
 *
 * The four slots, in pipeline order:
 * - transport: runs on each accepted connection of a listener, before the CONNECT is read: reads a
 *              PROXY header, terminates TLS. Returns the socket the rest of the pipeline reads.
 * - extractor: reads the CONNECT and returns the stickiness key, or `undefined` to pass to the next.
 * - strategy:  chooses a backend for a connection, or abstains so the next strategy decides.
 * - sink:      acts on the upstream connection before the client's bytes are replayed
 *              (write a PROXY header, wrap it in TLS).
 *
 * Built-in plugins use exactly this contract; see docs/architecture.md for a walk-through.
 */
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { IConnectPacket } from 'mqtt-packet';
import type { Logger } from 'pino';
import type { Schema } from 'convict';

/** The contract version this build of @tether/core implements. Plugins declare the one they target. */
export const PLUGIN_API_VERSION = 1;

export type PluginKind = 'transport' | 'extractor' | 'strategy' | 'sink' | 'provider';

/** What an operator sets: `drain` takes no new connections but keeps the live ones; `maint` neither. */
export type AdminState = 'ready' | 'drain' | 'maint';
/** Effective state: the admin state, or `down` when a ready backend fails its health checks. Only `ready` takes new connections. */
export type BackendState = AdminState | 'down';

/** What a plugin sees of a backend. The core owns these objects; plugins must not mutate them. */
export interface Backend {
  /** Stable name, used as the stick-table value (like HAProxy's `server_key`). */
  readonly id: string;
  readonly host: string;
  readonly port: number;
  readonly weight: number;
  readonly state: BackendState;
  /** PROXY protocol version to send to this backend, if any. */
  readonly sendProxy: 'none' | 'v1' | 'v2';
  /** Live spliced connections on this backend right now. */
  readonly activeConnections: number;
  /** Most live connections at once; 0 means no limit. Backends at the limit are not offered. */
  readonly maxconn: number;
  /**
   * Set when the address is the broker's own WebSocket endpoint (`websocket: { path }`): only
   * clients of a WebSocket listener are offered this backend, and their connections pass through.
   */
  readonly websocketPath?: string | undefined;
  /** Where the backend came from: `static` (the configuration's `backends`) or a provider's label (`dns _mqtt._tcp.example`). */
  readonly source?: string;
  /** What its provider said about it (an SRV record's priority, a pod name); empty for static backends. */
  readonly metadata?: Readonly<Record<string, string>>;
  /** Offered only when no other backend can take the connection (HAProxy's `backup`; an SRV record of a higher priority). */
  readonly backup?: boolean;
}

/** What TLS termination learned about a connection. */
export interface TlsFacts {
  /** e.g. `TLSv1.3`. */
  readonly protocol: string;
  /** OpenSSL cipher name, e.g. `TLS_AES_256_GCM_SHA384`. */
  readonly cipher: string;
  /** SNI the client asked for, if any. */
  readonly servername: string | undefined;
  /** ALPN protocol agreed, if any. */
  readonly alpn: string | undefined;
  /** The client certificate's subject CN, when one was presented. */
  readonly peerCN: string | undefined;
  /** The client certificate's subject alternative names (`DNS:…`, `email:…`, `URI:…`). */
  readonly peerSAN: readonly string[];
  /** True when a client certificate was presented and verified against the CA. */
  readonly verified: boolean;
  /** Why verification failed, when a certificate was presented but not verified. */
  readonly verifyError: string | undefined;
}

/**
 * What is known about a connection before its CONNECT: its addresses (the real client's when a
 * PROXY header said so) and TLS facts. Transports fill it in; extractors and sinks read it.
 */
export interface ConnFacts {
  remoteAddress: string;
  remotePort: number;
  localAddress: string;
  localPort: number;
  family: 'IPv4' | 'IPv6';
  /** True when the addresses came from a PROXY protocol header. */
  proxied: boolean;
  tls: TlsFacts | undefined;
  /** Name of the listener that accepted the connection. */
  readonly listener: string;
  /** Free space for plugins to share per-connection facts; namespace your keys. */
  readonly attributes: Map<string, unknown>;
}

/**
 * Runs on each accepted connection of the listeners it is configured on, in order, before the
 * CONNECT is read. It may read from the socket (a PROXY header), update `facts`, and return the
 * socket the next stage reads (the same, or a TLS socket over it). To refuse the connection,
 * throw a ConnectionError (it is logged and counted under its reason).
 */
export interface Transport {
  accept(socket: Socket, facts: ConnFacts): Socket | Promise<Socket>;
  /** A configuration reload kept this product: read again what it read from disk (certificates). */
  reload?(): void | Promise<void>;
  close?(): void | Promise<void>;
}

/** One client connection as the pipeline knows it once its CONNECT has been read. */
export interface ConnInfo {
  /** Process-unique connection id, also used in logs as `conn`. */
  readonly id: number;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
  readonly family: 'IPv4' | 'IPv6';
  /** True when the addresses came from a PROXY protocol header (Tether behind an L4 balancer). */
  readonly proxied: boolean;
  /** TLS facts, for connections that arrived over TLS. */
  readonly tls: TlsFacts | undefined;
  /** Name of the listener that accepted the connection. */
  readonly listener: string;
  /** The parsed CONNECT packet (mqtt-packet's shape). Treat as read-only and untrusted. */
  readonly connect: IConnectPacket;
  /** MQTT protocol level: 3 (3.1), 4 (3.1.1) or 5. */
  readonly protocolVersion: 3 | 4 | 5;
  /**
   * True when the client asked the broker to keep its session (3.1.x clean session off, or
   * MQTT 5 with a session expiry interval above zero): moving it to another broker loses state.
   */
  readonly persistentSession: boolean;
  /** The stickiness key chosen by the extractor chain, or undefined for a keyless client. */
  key: string | undefined;
  /** Name of the extractor that produced `key`. */
  keySource: string | undefined;
  /**
   * True when nothing will be connected (`tether explain`): decide as usual, but change no state
   * (do not refresh a table entry, do not count a hit).
   */
  readonly dryRun: boolean;
  /** Free space for plugins to share per-connection facts; namespace your keys. */
  readonly attributes: Map<string, unknown>;
}

/**
 * Result of one strategy. `abstain` passes the decision to the next strategy in the chain.
 * `remembered` says the backend was chosen because it is where this client's key was seen before
 * (a stick-table hit): the broker is then expected to hold the client's session, and a CONNACK
 * without session-present for a persistent client counts as a stickiness miss.
 */
export type Selection =
  | { readonly kind: 'selected'; readonly backend: Backend; readonly remembered?: boolean }
  | { readonly kind: 'abstain' }
  | Refusal;

/**
 * `refuse` ends the chain for this connection: the client gets a CONNACK "server busy" (MQTT 5
 * reason 0x89; 3.1.x return code 3, server unavailable) and nothing reaches a broker. For
 * admission policies (kick-loop damping, rate limits), not for choosing. `reason` names the
 * rejection counter and log field (snake_case, at most 40 characters); `detail` is for the log.
 */
export interface Refusal {
  readonly kind: 'refuse';
  readonly reason: string;
  readonly detail: string;
}

export const ABSTAIN: Selection = Object.freeze({ kind: 'abstain' });
export function selected(backend: Backend, options?: { readonly remembered?: boolean }): Selection {
  return options?.remembered ? { kind: 'selected', backend, remembered: true } : { kind: 'selected', backend };
}
export function refuse(reason: string, detail: string): Refusal {
  return { kind: 'refuse', reason, detail };
}

/** Per-connection key extraction. Return undefined (or '') to let the next extractor try. */
export interface Extractor {
  extract(conn: ConnInfo): string | undefined;
}

/** A row of a strategy's table, as shown by `tether table show` and the admin API. */
export interface TableEntry {
  readonly key: string;
  readonly backend: string;
  /** Connections currently using this entry (HAProxy's `use`). */
  readonly use: number;
  /** Milliseconds until the entry expires if it stays idle. */
  readonly expiresInMs: number;
  /** Total times the entry was matched or stored. */
  readonly hits: number;
  /** Epoch milliseconds of the last match or store. */
  readonly lastSeen: number;
  /** What the operator should notice about the entry, e.g. `kick-loop` (shown by `tether table show`). */
  readonly flags?: readonly string[];
}

export interface TableView {
  readonly name: string;
  readonly type: 'string';
  readonly size: number;
  readonly used: number;
  readonly entries: readonly TableEntry[];
  /**
   * Where the entries live, for the operator: `memory` (this process), or a shared store
   * described without secrets (e.g. `redis redis://10.0.0.5:6379/0 prefix tether:`).
   */
  readonly store?: string;
  /** More entries follow: pass this back as `TableQuery.cursor` for the next page. */
  readonly cursor?: string;
}

/** Which part of a table the admin API asks for. */
export interface TableQuery {
  /** At most this many entries (a page). */
  readonly limit?: number;
  /** Where the previous page ended (`TableView.cursor`); absent for the first page. */
  readonly cursor?: string;
  /** Only this key (an exact match after the table's own normalization). */
  readonly key?: string;
}

/**
 * Backend selection. `select` receives only backends that can take a new connection now
 * (ready, not excluded by a failed attempt). It may be async (a shared table in Redis), but a
 * synchronous answer avoids a microtask per connection.
 */
export interface Strategy {
  select(conn: ConnInfo, backends: readonly Backend[]): Selection | Promise<Selection>;
  /**
   * A later strategy of the chain chose `choice` after this one abstained; the backend is not
   * connected yet. Return a selection of one of `backends` to send the connection there instead,
   * or undefined (or ABSTAIN) to let the choice stand. Called in chain order, for the strategies
   * before the one that chose. This is where a shared table claims a new key atomically (first
   * writer wins) and, when another instance won, follows the winner for this very connection.
   */
  confirm?(conn: ConnInfo, choice: Backend, backends: readonly Backend[]): Selection | undefined | Promise<Selection | undefined>;
  /** The connection to `backend` is established: the place to learn (store after connect, like HAProxy). */
  onSpliced?(conn: ConnInfo, backend: Backend): void;
  /** A spliced connection closed. */
  onClosed?(conn: ConnInfo, backend: Backend): void;
  /**
   * For the admin API: the strategy's table, if it keeps one. `limit` bounds the entries; `query`
   * asks for a page (a shared table is read in pages, never all at once) or one key.
   */
  table?(limit?: number, query?: TableQuery): TableView | Promise<TableView>;
  /** Admin (HAProxy `set table`): `key` now goes to `backend`, as if learned. */
  setEntry?(key: string, backend: Backend): void | Promise<void>;
  /** Admin: forget `key`. Returns whether it was there. */
  deleteEntry?(key: string): boolean | Promise<boolean>;
  /** Admin (HAProxy `clear table`): forget every entry, or only those on `backendId`. Returns how many. */
  clearEntries?(backendId?: string): number | Promise<number>;
  /** True when this strategy answers for every client whenever a backend is available. */
  readonly alwaysAnswers?: boolean;
  /** A configuration reload kept this product (its options did not change). */
  reload?(): void | Promise<void>;
  close?(): void | Promise<void>;
}

/**
 * Acts on the upstream connection before the sniffed bytes are replayed. Return the stream the
 * rest of the connection should use: the same socket after writing a preamble, or a wrapper.
 */
export interface Sink {
  attach(conn: ConnInfo, backend: Backend, upstream: Duplex): Duplex | Promise<Duplex>;
  /** A configuration reload kept this product: read again what it read from disk (certificates). */
  reload?(): void | Promise<void>;
  /** At shutdown, or when a reload drops or replaces this product. */
  close?(): void | Promise<void>;
}

/** One backend as a provider describes it. */
export interface ProvidedBackend {
  /**
   * Stable name: the same backend must get the same name on every emission, whatever the order
   * of the records it came from, because the stick table and rendezvous hashing key on it.
   */
  readonly name: string;
  /** `host:port` (`[::1]:port` for IPv6). */
  readonly address: string;
  /** From WEIGHT_MIN to WEIGHT_MAX (1 to 256); default 1. */
  readonly weight?: number;
  /** Free-form facts shown by `tether backend list --json` (strings only). */
  readonly metadata?: Readonly<Record<string, string>>;
  /** Offered only when no other backend can take a connection (an SRV record of a higher priority). */
  readonly backup?: boolean;
}

/**
 * A source of backends. The core calls `start` once, right after `create`; the provider then
 * calls `emit` with the COMPLETE current set every time it changes (not a diff), and may call it
 * at once with what `create` already learned. Emitting an equal set again is harmless. The core
 * applies each set to the live pool: a new backend is health-checked before it takes clients
 * (when health checks are configured), a vanished one takes no new clients and keeps its live
 * connections until they close. Stop your timers and watchers when `ctx.signal` aborts (or in
 * `close`): a reload that changes the provider's options creates a new product and retires this one.
 */
export interface Provider {
  start(emit: (backends: readonly ProvidedBackend[]) => void): void;
  /** Shown as each backend's `source` (e.g. `dns emqx.example:1883`); defaults to the plugin's name. */
  readonly label?: string;
  /** A configuration reload kept this product (its options did not change). */
  reload?(): void | Promise<void>;
  close?(): void | Promise<void>;
}

/**
 * Counter scope given to each plugin; names are snake_case and prefixed with the plugin name.
 * Each counter shows under the admin API's GET /stats as `<plugin>_<name>` and in GET /metrics as
 * the Prometheus counter `tether_<plugin>_<name>_total`. Count events, not amounts that go down.
 */
export interface StatsScope {
  inc(name: string, by?: number): void;
}

/**
 * State shared between the worker processes of one balancer (`workers` above 1). Each chain entry
 * gets its own channel, so two stick tables in one chain do not hear each other.
 *
 * Ordering: every broadcast goes through the primary process, which relays all of them in one
 * order to ALL workers, the sender included. A plugin that applies its own state changes when
 * they come back (and not only when it makes them) therefore sees the same sequence as every
 * other worker, and concurrent conflicting writes converge: the last in the primary's order wins.
 * Delivery is asynchronous (broadcasts are batched for a few milliseconds) and only between live
 * workers: the model is eventual consistency, not a lock.
 *
 * Joining: a worker that starts (or is restarted after a crash) asks for the current state before
 * it accepts connections. The oldest live worker's `onSnapshotRequest` provider is called and the
 * chunks it yields reach the new worker's `onSnapshot` handler; the messages relayed while the
 * snapshot was being taken are then applied after it. So make messages idempotent overwrites
 * ("key K is on backend B"), not increments, and keep each chunk small (a few hundred entries).
 *
 * Messages and chunks must be plain JSON values; the primary does not look inside them.
 */
export interface PeerChannel {
  /** This worker's number (1, 2, …; a restarted worker gets a new one): the `from` of its messages. */
  readonly self: number;
  /** Sends `message` to every worker, this one included, through the primary. */
  broadcast(message: unknown): void;
  /** Handles every relayed message, in the primary's order, the worker's own ones included. Set once. */
  onMessage(handler: (message: unknown, from: number) => void): void;
  /** What this worker gives a worker that starts: a (lazy) sequence of bounded-size chunks. Set once. */
  onSnapshotRequest(provider: () => Iterable<unknown>): void;
  /** Receives the chunks of another worker's snapshot when this one starts, before any later message. Set once. */
  onSnapshot(handler: (chunk: unknown) => void): void;
}

/** What `create` receives besides its validated options. */
export interface PluginContext {
  /** A pino child logger bound to `{ plugin: name }`. */
  readonly log: Logger;
  readonly stats: StatsScope;
  /** Milliseconds clock; injectable so tests can drive expiry without sleeping. */
  readonly now: () => number;
  /** Aborted when Tether shuts down. */
  readonly signal: AbortSignal;
  /** Every configured backend (live objects: state and connection counts change). */
  readonly backends: readonly Backend[];
  /**
   * Present only when Tether runs several worker processes (`workers` above 1): the channel to
   * share this plugin's state with the other workers. Absent in a single process, so a plugin
   * that keeps state writes `ctx.peers?.broadcast(…)` and works either way.
   */
  readonly peers?: PeerChannel;
  /**
   * On a configuration reload that changed this chain entry's options: the product of the same
   * plugin (same chain, same listener) that this one replaces, to take its state over (a stick
   * table keeps its entries when its `size` changes). Absent at start and when nothing is replaced.
   * The replaced product is closed once the new one is in place, but may still be told
   * `onClosed` for the connections it saw spliced, for as long as they live.
   */
  readonly previous?: unknown;
}

interface PluginBase<K extends PluginKind, O, P> {
  /** Unique name; config refers to the plugin by it. Third parties should namespace: `acme:geo`. */
  readonly name: string;
  readonly kind: K;
  /** The contract version the plugin was written for; must equal PLUGIN_API_VERSION. */
  readonly apiVersion: number;
  readonly version?: string;
  readonly description?: string;
  /** Convict schema of the plugin's options; validated strictly before `create`. */
  readonly options?: Schema<O>;
  create(ctx: PluginContext, options: O): P | Promise<P>;
}

export type TransportPlugin<O = Record<string, unknown>> = PluginBase<'transport', O, Transport>;
export type ExtractorPlugin<O = Record<string, unknown>> = PluginBase<'extractor', O, Extractor>;
export type StrategyPlugin<O = Record<string, unknown>> = PluginBase<'strategy', O, Strategy>;
export type SinkPlugin<O = Record<string, unknown>> = PluginBase<'sink', O, Sink>;
export type ProviderPlugin<O = Record<string, unknown>> = PluginBase<'provider', O, Provider>;
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type TetherPlugin = TransportPlugin<any> | ExtractorPlugin<any> | StrategyPlugin<any> | SinkPlugin<any> | ProviderPlugin<any>;

/** Identity helpers: they exist so TypeScript infers the option type from the schema. */
export function defineTransport<O>(plugin: TransportPlugin<O>): TransportPlugin<O> {
  return plugin;
}
export function defineExtractor<O>(plugin: ExtractorPlugin<O>): ExtractorPlugin<O> {
  return plugin;
}
export function defineStrategy<O>(plugin: StrategyPlugin<O>): StrategyPlugin<O> {
  return plugin;
}
export function defineSink<O>(plugin: SinkPlugin<O>): SinkPlugin<O> {
  return plugin;
}
export function defineProvider<O>(plugin: ProviderPlugin<O>): ProviderPlugin<O> {
  return plugin;
}
