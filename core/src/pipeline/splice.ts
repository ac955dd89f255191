import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { ConnackWatch } from '../mqtt/connack-reader.ts';
import type { IdleSweeper, IdleWatched } from './idle-sweeper.ts';

export interface SpliceResult {
  /** Why the connection ended: who closed first, or which idle timeout fired. */
  readonly reason: string;
  readonly bytesIn: number;
  readonly bytesOut: number;
}

/** Who is told what happens to a spliced connection (one object per connection, no closures). */
export interface SpliceObserver {
  /** Both sides have closed. Called once. */
  closed(result: SpliceResult): void;
  /** The reader given to `splice` reached its verdict on the broker's first bytes. Called at most once. */
  connack(reader: ConnackWatch): void;
}

/** The splice a stream belongs to, set on both of its streams. */
const SPLICE = Symbol('tether.splice');
type Linked = Duplex & { [SPLICE]?: Splice };

/**
 * One spliced connection: client and backend joined after the sniffed bytes were replayed.
 *
 * Bytes move by 'data' handlers that write to the other side and pause on back-pressure until it
 * drains: what `pipe()` does, without its per-stream state (about 4 KiB per idle connection) or
 * its extra listeners. The handlers are shared functions that find their connection through a
 * symbol on the stream, so a connection allocates no closure per direction and nothing per chunk.
 * A side that ends half-closes the other; a side that goes away lets the other flush what it holds
 * and then closes it. The observer hears once, when both have closed. Idle timeouts are the sweeper's.
 *
 * With a ConnackReader, the broker's first chunks are shown to it after they have been forwarded
 * (the client gets them as fast as without it) until it has its verdict; from then on the only
 * cost left per chunk is one field read.
 */
class Splice implements IdleWatched {
  /** The client's TCP socket: its byte counters, for idle timeouts and the close line. */
  readonly client: Socket;
  /** What the client's MQTT bytes are read from and written to: the socket, or a WebSocket bridge over it. */
  readonly clientSide: Duplex;
  readonly server: Socket;
  /** What sinks returned: the backend socket itself, or a wrapper over it such as TLS. */
  readonly upstream: Duplex;
  readonly #sweeper: IdleSweeper;
  readonly #observer: SpliceObserver;
  /** Reads the broker's first bytes as they pass, until it has its verdict; then dropped. */
  connack: ConnackWatch | undefined;
  #reason: string | undefined;
  #open = 2;
  clientBytes = 0;
  serverBytes = 0;
  clientActiveAt = 0;
  serverActiveAt = 0;

  constructor(client: Socket, clientSide: Duplex, server: Socket, upstream: Duplex, sweeper: IdleSweeper, observer: SpliceObserver, connack: ConnackWatch | undefined) {
    this.client = client;
    this.clientSide = clientSide;
    this.server = server;
    this.upstream = upstream;
    this.#sweeper = sweeper;
    this.#observer = observer;
    this.connack = connack;
  }

  /** A chunk from the broker, already forwarded to the client: the reader looks at it. */
  readConnack(reader: ConnackWatch, chunk: Buffer): void {
    if (reader.push(chunk) === 'need-more') return;
    this.connack = undefined;
    this.#observer.connack(reader);
  }

  note(why: string): void {
    this.#reason ??= why;
  }

  other(side: Duplex): Duplex {
    return side === this.clientSide ? this.upstream : this.clientSide;
  }

  idle(reason: 'client_timeout' | 'server_timeout'): void {
    this.close(reason);
  }

  /** Ends the connection from our side (idle timeout, shutdown-sessions, stop) with a reason. */
  close(why: string): void {
    this.note(why);
    this.clientSide.destroy();
    this.client.destroy();
    this.upstream.destroy();
  }

  sideClosed(side: Duplex): void {
    release(this.other(side));
    if (--this.#open > 0) return;
    this.#sweeper.unwatch(this);
    this.#observer.closed({ reason: this.#reason ?? 'closed', bytesIn: this.client.bytesRead, bytesOut: this.client.bytesWritten });
  }
}

/**
 * Joins client and backend; returns a function that closes both at once with a reason.
 * `upstream` is what sinks returned (decrypted, under TLS); `upstreamSocket` is the TCP socket
 * under it. `connack`, if given, reads the broker's first packet from `upstream`. `clientSide` is
 * what carries the client's MQTT bytes when it is not the socket itself (a WebSocket bridge).
 */
export function splice(client: Socket, upstreamSocket: Socket, upstream: Duplex, sweeper: IdleSweeper, observer: SpliceObserver, connack?: ConnackWatch, clientSide: Duplex = client): (reason: string) => void {
  const s = new Splice(client, clientSide, upstreamSocket, upstream, sweeper, observer, connack);
  (clientSide as Linked)[SPLICE] = s;
  (upstream as Linked)[SPLICE] = s;
  client.setNoDelay(true);
  upstreamSocket.setNoDelay(true);
  link(clientSide);
  link(upstream);
  sweeper.watch(s);
  // A side that closed before we got here will not emit 'close' again. ('close' and 'end' come
  // once: plain `on` spares the wrapper `once` allocates per listener.)
  if (clientSide.closed) s.sideClosed(clientSide);
  else clientSide.on('close', onClose);
  if (upstream.closed) s.sideClosed(upstream);
  else upstream.on('close', onClose);
  // The sniff paused the client; a fresh upstream flows once it has a 'data' listener.
  clientSide.resume();
  upstream.resume();
  return (why) => s.close(why);
}

function link(side: Duplex): void {
  side.on('data', onData);
  side.on('drain', onDrain);
  side.on('end', onEnd);
  side.on('error', onError);
}

function spliceOf(side: Duplex): Splice {
  return (side as Linked)[SPLICE]!;
}

function onData(this: Duplex, chunk: Buffer): void {
  const s = spliceOf(this);
  const other = s.other(this);
  // A side that is gone takes nothing more; its close releases this one.
  if (!other.destroyed && !other.write(chunk)) this.pause();
  // Looked at after forwarding: the client never waits for the reader (or a log line it causes).
  const reader = s.connack;
  if (reader !== undefined && this === s.upstream) s.readConnack(reader, chunk);
}

/** This side took what it was given: the other may send again. */
function onDrain(this: Duplex): void {
  const other = spliceOf(this).other(this);
  if (!other.destroyed) other.resume();
}

function onEnd(this: Duplex): void {
  const s = spliceOf(this);
  s.note(this === s.clientSide ? 'client_closed' : 'server_closed');
  const other = s.other(this);
  if (!other.destroyed && !other.writableEnded) other.end();
}

function onError(this: Duplex, err: NodeJS.ErrnoException): void {
  const s = spliceOf(this);
  s.note(`${this === s.clientSide ? 'client' : 'server'}_error_${err.code ?? 'unknown'}`);
}

function onClose(this: Duplex): void {
  spliceOf(this).sideClosed(this);
}

/** Closes `side` once it has flushed what it holds. */
function release(side: Duplex): void {
  if (side.destroyed) return;
  if (side.writableEnded) {
    if (side.writableFinished) side.destroy();
    else side.once('finish', () => side.destroy());
    return;
  }
  side.end(() => side.destroy());
}
