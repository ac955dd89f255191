import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { catchError, defer, EMPTY, map, mergeMap, type Observable } from 'rxjs';
import type { BackendPool } from '../backend/backend-pool.ts';
import type { TetherConfig } from '../config/types.ts';
import { ClientRefusedError, ConnectionError, describe, NoBackendError, PluginHookError, UpstreamConnectError, WebSocketRejectError } from '../errors.ts';
import type { BackendMeter } from '../metrics/backend-meter.ts';
import type { TetherMetrics } from '../metrics/tether-metrics.ts';
import { serverBusyConnack, serverUnavailableConnack } from '../mqtt/connack.ts';
import { ConnackReader } from '../mqtt/connack-reader.ts';
import type { Backend, ConnFacts, ConnInfo, Extractor, Sink, Transport } from '../plugin.ts';
import type { Named } from '../plugins/plugin-loader.ts';
import { sniffConnect, type Sniffed } from '../sniff/sniff-socket.ts';
import type { Stats } from '../stats.ts';
import { CLOSE, closeFrame, OPCODE, serverFrame } from '../websocket/websocket-frames.ts';
import { WebSocketBridge } from '../websocket/websocket-bridge.ts';
import { WEBSOCKET_DEFAULTS, type WebSocketListenerOptions } from '../websocket/websocket-handshake.ts';
import { sniffWebSocket } from '../websocket/websocket-sniff.ts';
import { FramedConnackReader } from '../websocket/framed-connack-reader.ts';
import type { Opening } from '../websocket/opening-reader.ts';
import { forwardedRequest, upgradeUpstream } from '../websocket/upstream-upgrade.ts';
import { createConnInfo, factsOf } from './conn-info.ts';
import { IdleSweeper } from './idle-sweeper.ts';
import { identify } from './identify.ts';
import { splice } from './splice.ts';
import { SplicedConnection } from './spliced-connection.ts';
import type { StrategyChain } from './strategy-chain.ts';
import { connectUpstream } from './upstream-connect.ts';

/** How long a refused client may take to read its CONNACK before we close anyway. */
const REFUSAL_LINGER_MS = 2000;

/**
 * The connection's logger, made on first use: most connections never log a line at the usual
 * levels, and a pino child per connection costs CPU at accept and memory for the connection's life.
 */
type ConnLog = () => Logger;

/** Streams of a connection may emit 'error' between stages; each stage observes failures itself. */
function ignore(): void {}

interface Dispatched {
  readonly conn: ConnInfo;
  readonly sniffed: Sniffed;
  readonly backend: Backend;
  readonly strategy: string;
  /** The backend is where the key was seen before (a stick-table hit). */
  readonly remembered: boolean;
  readonly upstreamSocket: Socket;
  readonly upstream: Duplex;
  readonly meter: BackendMeter | undefined;
  /** A WebSocket client passing through to the broker's WebSocket endpoint: what the broker sent after its 101. */
  readonly passThrough: Buffer | undefined;
}

/** A listener as the pipeline sees it: its name, its transport chain and, for a WebSocket listener, its options. */
export interface ListenerRuntime {
  readonly name: string;
  readonly transports: readonly Named<Transport>[];
  /** Set for a WebSocket listener: clients open a WebSocket and send MQTT in its binary frames. */
  readonly websocket?: WebSocketListenerOptions | undefined;
}

/** Hands out connection ids, process-unique across configuration reloads. */
export interface ConnectionIds {
  next(): number;
}

export interface PipelineDeps {
  readonly config: TetherConfig;
  readonly log: Logger;
  readonly stats: Stats;
  readonly pool: BackendPool;
  readonly extractors: readonly Named<Extractor>[];
  readonly strategies: StrategyChain;
  readonly sinks: readonly Named<Sink>[];
  readonly ids: ConnectionIds;
  /** Absent when `metrics.enabled` is false. */
  readonly metrics?: TetherMetrics | undefined;
}

/**
 * accept → sniff → identify → select → splice, for one connection, as an Observable of stages.
 * Every failure is a value that ends in `reject`: the connection closes with one log line and a
 * counter, and the stream of connections goes on.
 */
export class ConnectionPipeline {
  readonly #deps: PipelineDeps;
  readonly #sweeper: IdleSweeper;
  /** Whether to read each broker's CONNACK: something counts it (metrics) or logs it (the close line). */
  readonly #readConnack: boolean;
  /** Backends only WebSocket clients may use (their address is a broker's WebSocket endpoint). */
  readonly #websocketOnly: ReadonlySet<string>;
  /** Connections accepted and not yet spliced or rejected: a reload retires the old generation's plugins once this is 0. */
  #pending = 0;
  #idle: (() => void) | undefined;

  constructor(deps: PipelineDeps) {
    this.#deps = deps;
    this.#sweeper = new IdleSweeper(deps.config.timeouts.clientMs, deps.config.timeouts.serverMs);
    this.#readConnack = deps.metrics !== undefined || deps.log.isLevelEnabled('info');
    this.#websocketOnly = new Set(deps.config.backends.filter((b) => b.websocketPath !== undefined).map((b) => b.id));
  }

  handle(raw: Socket, listener: ListenerRuntime): Observable<void> {
    const { config, stats, metrics } = this.#deps;
    const id = this.#deps.ids.next();
    this.#pending++;
    let child: Logger | undefined;
    const log: ConnLog = () => (child ??= this.#deps.log.child({ conn: id }));
    const facts = factsOf(raw, listener.name);
    // The client is the raw socket until a transport (TLS) hands back another one.
    let client = raw;
    stats.inc('connections_accepted');
    const meter = metrics?.listener(listener.name);
    meter?.accept();
    // A reset during any stage must not become an uncaught 'error'; the stages observe it themselves.
    raw.on('error', ignore);
    // accept (the listener's transports, if any) → sniff. Without transports the sniff reads the
    // raw socket at once: no stage of its own, since every operator is an object per connection.
    const ws = listener.websocket;
    const sniffed = listener.transports.length === 0
      ? ws === undefined ? sniffConnect(raw, config.sniff) : sniffWebSocket(raw, config.sniff, ws)
      : defer(() => this.#transports(raw, listener, facts)).pipe(
          mergeMap((socket) => {
            client = socket;
            return ws === undefined ? sniffConnect(socket, config.sniff) : sniffWebSocket(socket, config.sniff, ws);
          }),
        );
    return sniffed.pipe(
      // identify → select and connect (retries included)
      mergeMap((s) => {
        meter?.sniffed(s.sniffMs);
        return this.#dispatch(client, this.#identify(id, facts, s, log), facts, s, log);
      }),
      // splice: from here bytes move socket to socket, outside RxJS
      map((dispatched) => this.#splice(client, dispatched, log, ws)),
      catchError((err: unknown) => {
        this.#reject(client, facts, err, log, ws !== undefined);
        return EMPTY;
      }),
    );
  }

  /** The accept stage: each of the listener's transports in order (PROXY header, then TLS). */
  async #transports(raw: Socket, listener: ListenerRuntime, facts: ConnFacts): Promise<Socket> {
    let socket = raw;
    for (const { name, product } of listener.transports) {
      try {
        socket = await product.accept(socket, facts);
      } catch (err) {
        if (err instanceof ConnectionError) throw err;
        throw new PluginHookError(name, 'accept', err);
      }
      if (socket !== raw) socket.on('error', ignore);
    }
    return socket;
  }

  #identify(id: number, facts: ConnFacts, sniffed: Sniffed, log: ConnLog): ConnInfo {
    const conn = createConnInfo(id, facts, sniffed.packet);
    identify(conn, this.#deps.extractors);
    if (this.#deps.log.isLevelEnabled('debug')) {
      log().debug({ mqtt: { clientId: sniffed.packet.clientId.slice(0, 128), username: sniffed.packet.username?.slice(0, 128) }, protocolVersion: conn.protocolVersion, key: conn.key?.slice(0, 128), keySource: conn.keySource }, 'connect sniffed');
    }
    return conn;
  }

  /** Select and connect, trying other backends when a connect fails (retries + redispatch). */
  async #dispatch(client: Socket, conn: ConnInfo, facts: ConnFacts, sniffed: Sniffed, log: ConnLog): Promise<Dispatched> {
    const { pool, strategies, config, metrics } = this.#deps;
    // A plain MQTT client cannot speak to a broker's WebSocket endpoint: those are never offered to it.
    const tried = new Set<string>(sniffed.websocket === undefined ? this.#websocketOnly : undefined);
    const failures: string[] = [];
    for (let attempt = 0; attempt <= config.retries; attempt++) {
      if (client.destroyed) throw clientGone();
      const choice = await strategies.select(conn, pool.available(tried));
      if (!choice) break;
      // Counted from the choice, not the splice, so a burst of connects spreads out (HAProxy does the same).
      pool.connectionOpened(choice.backend);
      const meter = metrics?.backend(choice.backend.id);
      const started = meter ? performance.now() : 0;
      let upstreamSocket: Socket;
      try {
        upstreamSocket = await connectUpstream(choice.backend, pool.connectTimeout(choice.backend, config.timeouts.connectMs));
        meter?.connected(performance.now() - started);
      } catch (err) {
        pool.connectionClosed(choice.backend);
        if (!(err instanceof UpstreamConnectError)) throw err;
        this.#connectFailed(choice.backend, err, meter, attempt, log);
        tried.add(choice.backend.id);
        failures.push(err.message);
        continue;
      }
      if (client.destroyed) {
        upstreamSocket.destroy();
        pool.connectionClosed(choice.backend);
        throw clientGone();
      }
      let upstream: Duplex;
      try {
        upstream = this.#deps.sinks.length === 0 ? upstreamSocket : await this.#attachSinks(conn, choice.backend, upstreamSocket);
      } catch (err) {
        pool.connectionClosed(choice.backend);
        throw err;
      }
      // A sink may take round trips (a TLS handshake): the client, or Tether, may be gone by now.
      if (client.destroyed) {
        upstream.destroy();
        upstreamSocket.destroy();
        pool.connectionClosed(choice.backend);
        throw clientGone();
      }
      // Pass-through: the broker's own WebSocket handshake, before the client's frames are replayed.
      const path = choice.backend.websocketPath;
      let passThrough: Buffer | undefined;
      if (sniffed.websocket !== undefined && path !== undefined) {
        try {
          passThrough = await this.#upgradeUpstream(client, upstreamSocket, upstream, choice.backend, sniffed.websocket, path, facts);
        } catch (err) {
          if (!(err instanceof UpstreamConnectError)) throw err;
          this.#connectFailed(choice.backend, err, meter, attempt, log);
          tried.add(choice.backend.id);
          failures.push(err.message);
          continue;
        }
      }
      return { conn, sniffed, backend: choice.backend, strategy: choice.strategy, remembered: choice.remembered, upstreamSocket, upstream, meter, passThrough };
    }
    const detail = failures.length > 0 ? failures.join('; ') : pool.available().length === 0 ? pool.explainEmpty() : this.#noneOffered(sniffed);
    throw new NoBackendError(detail, conn.protocolVersion);
  }

  /** One backend failed to connect (or to upgrade): counted and logged; the caller tries another. */
  #connectFailed(backend: Backend, err: UpstreamConnectError, meter: BackendMeter | undefined, attempt: number, log: ConnLog): void {
    meter?.connectFailed();
    this.#deps.stats.inc('upstream_connect_failures');
    log().warn({ backend: backend.id, err: err.message, attempt }, 'backend connect failed, trying another');
  }

  /**
   * Pass-through's handshake with the broker's WebSocket endpoint; resolves with what the broker
   * sent after its 101. On any failure the backend connection is closed and released.
   */
  async #upgradeUpstream(client: Socket, upstreamSocket: Socket, upstream: Duplex, backend: Backend, opening: Opening, path: string, facts: ConnFacts): Promise<Buffer> {
    const { pool, config } = this.#deps;
    const release = (): void => {
      upstream.destroy();
      upstreamSocket.destroy();
      pool.connectionClosed(backend);
    };
    let rest: Buffer;
    try {
      rest = await upgradeUpstream(upstream, backend.id, forwardedRequest(opening, path, facts), opening, pool.connectTimeout(backend, config.timeouts.connectMs));
    } catch (err) {
      release();
      throw err;
    }
    if (client.destroyed) {
      release();
      throw clientGone();
    }
    return rest;
  }

  /** Why a chain with ready backends chose none: for a plain client, they may all be WebSocket endpoints. */
  #noneOffered(sniffed: Sniffed): string {
    const plain = sniffed.websocket === undefined && this.#websocketOnly.size > 0;
    if (plain && this.#deps.pool.available(this.#websocketOnly).length === 0) return 'the ready backends are all WebSocket endpoints (pass-through), which plain MQTT clients cannot use';
    return 'the strategy chain chose none';
  }

  async #attachSinks(conn: ConnInfo, backend: Backend, socket: Socket): Promise<Duplex> {
    let stream: Duplex = socket;
    for (const { name, product } of this.#deps.sinks) {
      try {
        stream = await product.attach(conn, backend, stream);
      } catch (err) {
        socket.destroy();
        if (err instanceof ConnectionError) throw err;
        throw new PluginHookError(name, 'attach', err);
      }
    }
    return stream;
  }

  #splice(client: Socket, d: Dispatched, log: ConnLog, websocket: WebSocketListenerOptions | undefined): void {
    const { pool, strategies, stats } = this.#deps;
    const { conn, backend, strategy } = d;
    strategies.spliced(conn, backend);
    stats.inc('connections_spliced');
    stats.inc('connections_active');
    d.meter?.opened(client);
    const opening = d.sniffed.websocket;
    let clientSide: Duplex = client;
    if (opening === undefined) {
      d.upstream.write(d.sniffed.bytes);
    } else if (d.passThrough !== undefined) {
      // Pass-through: the client's frames as they came, then bytes both ways untouched.
      if (d.passThrough.length > 0) client.write(d.passThrough);
      d.upstream.write(opening.frames);
      if (opening.rest.length > 0) d.upstream.write(opening.rest);
    } else {
      // Bridge: the MQTT bytes to the broker's plain port; ws takes the client's socket over.
      d.upstream.write(d.sniffed.bytes);
      clientSide = new WebSocketBridge(client, opening.rest, websocket?.maxMessageBytes ?? WEBSOCKET_DEFAULTS.maxMessageBytes);
    }
    // What the connection keeps until it closes: only what its close needs, so the sniffed bytes
    // (and the read buffer they may share) are not kept for hours.
    const facts = { conn, backend, strategy, remembered: d.remembered, sniffMs: Math.round(d.sniffed.sniffMs * 1000) / 1000, meter: d.meter };
    const spliced = new SplicedConnection(this.#deps, facts, client, log);
    // In pass-through the broker's bytes are WebSocket frames: the CONNACK is read inside them.
    const reader = !this.#readConnack ? undefined : d.passThrough === undefined ? new ConnackReader(conn.protocolVersion) : new FramedConnackReader(conn.protocolVersion);
    const abort = splice(client, d.upstreamSocket, d.upstream, this.#sweeper, spliced, reader, clientSide);
    spliced.tracked(pool.track(backend, () => abort('backend_marked_down'), conn.persistentSession));
    if (this.#deps.log.isLevelEnabled('debug')) log().debug({ backend: backend.id, strategy }, 'spliced');
    this.#settled();
  }

  /** Resolves once every connection accepted so far is spliced or rejected, or after `maxWaitMs`. */
  whenIdle(maxWaitMs: number): Promise<void> {
    if (this.#pending === 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, maxWaitMs);
      timer.unref();
      const previous = this.#idle;
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.#idle = () => {
        previous?.();
        done();
      };
    });
  }

  #settled(): void {
    if (--this.#pending > 0 || !this.#idle) return;
    const idle = this.#idle;
    this.#idle = undefined;
    idle();
  }

  #reject(client: Socket, facts: ConnFacts, err: unknown, log: ConnLog, websocket: boolean): void {
    const { stats, metrics } = this.#deps;
    this.#settled();
    const reason = err instanceof ConnectionError ? err.reason : isReset(err) ? 'client_reset' : 'internal_error';
    stats.inc('connections_rejected');
    stats.inc(`rejected_${reason}`);
    metrics?.listener(facts.listener).reject(reason);
    const fields = { reason, code: err instanceof ConnectionError ? err.code : (err as NodeJS.ErrnoException)?.code, remote: facts.remoteAddress, listener: facts.listener, err: describe(err) };
    if (reason === 'internal_error') log().error(fields, 'connection closed');
    else log().warn(fields, 'connection rejected');
    if (err instanceof NoBackendError && err.protocolVersion !== undefined) {
      const connack = serverUnavailableConnack(err.protocolVersion);
      return endWith(client, websocket ? Buffer.concat([serverFrame(OPCODE.binary, connack), closeFrame(CLOSE.tryAgainLater, 'no broker available')]) : connack);
    }
    if (err instanceof ClientRefusedError) {
      const connack = serverBusyConnack(err.protocolVersion);
      return endWith(client, websocket ? Buffer.concat([serverFrame(OPCODE.binary, connack), closeFrame(CLOSE.tryAgainLater, 'server busy')]) : connack);
    }
    if (err instanceof WebSocketRejectError && err.reply !== undefined) return endWith(client, err.reply);
    client.destroy();
  }
}

function clientGone(): ConnectionError {
  return new ConnectionError('TETHER_ERR_CLIENT_CLOSED', 'client_closed_early', 'client went away while its backend was being connected');
}

function isReset(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException)?.code;
  return code === 'ECONNRESET' || code === 'EPIPE';
}

/**
 * Tells a client why it is closed (a CONNACK "server unavailable" to a valid CONNECT, an HTTP error
 * or Close frame to a WebSocket opening), then closes without a reset.
 */
function endWith(client: Socket, reply: Buffer): void {
  if (client.destroyed) return;
  client.resume(); // drain what it sent after CONNECT, so closing does not turn into a reset
  // A deadline, not an idle timeout: a client that keeps sending must not keep the socket.
  const linger = setTimeout(() => client.destroy(), REFUSAL_LINGER_MS);
  client.once('close', () => clearTimeout(linger));
  client.end(reply);
}
