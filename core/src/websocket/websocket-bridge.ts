import type { Socket } from 'node:net';
import { Duplex } from 'node:stream';
import { WebSocket } from 'ws';
import { CLOSE } from './websocket-frames.ts';

const BINARY = Object.freeze({ binary: true });
/** ws's own server defaults, for a WebSocket made the way its server makes one. */
const SERVER_SIDE = Object.freeze({ autoPong: true, maxPendingAutoPongs: 60, closeTimeout: 30_000 });
/** Receiver options by message bound: one frozen object per listener setting, not one per connection. */
const receivers = new Map<number, Readonly<Record<string, unknown>>>();
function receiverFor(maxPayload: number): Readonly<Record<string, unknown>> {
  let options = receivers.get(maxPayload);
  if (!options) receivers.set(maxPayload, (options = Object.freeze({ allowSynchronousEvents: true, maxBufferedChunks: 256 * 1024, maxFragments: 16 * 1024, maxPayload, skipUTF8Validation: true })));
  return options;
}
/** The constructor form ws's server uses (`new WebSocket(null, undefined, options)`), not in @types/ws. */
const ServerSideWebSocket = WebSocket as unknown as new (address: null, protocols: undefined, options: typeof SERVER_SIDE) => WebSocket;
const BRIDGE = Symbol('tether.websocket-bridge');
type Bridged = WebSocket & { [BRIDGE]: WebSocketBridge };

/**
 * The client side of a bridged connection: a Duplex of MQTT bytes over a WebSocket that Tether
 * terminated. The `ws` library takes the socket over after the opening (Tether answered the
 * Upgrade and read the frames that carried the CONNECT itself, so it can choose a backend before
 * anything is decided about the broker): each binary message becomes a chunk read, each chunk
 * written becomes one binary message. A text message breaks MQTT's WebSocket rule and closes the
 * connection (1003). Back-pressure both ways: `ws.pause()` when the reader is full, and writes
 * complete when `ws` handed them to the socket.
 *
 * Listeners are shared functions that find the bridge through a symbol on the WebSocket, so a
 * connection allocates no closures; per message `ws` allocates the payload, as a TCP read would.
 */
export class WebSocketBridge extends Duplex {
  readonly ws: WebSocket;
  /** The close code and reason the client sent, or 1006 when the connection dropped without one. */
  closeCode = 0;

  /** `maxMessageBytes`: a client message larger than this closes the connection with 1009 (the listener's `websocket.maxMessageBytes`). */
  constructor(socket: Socket, rest: Buffer, maxMessageBytes: number) {
    super({ allowHalfOpen: false });
    const ws = new ServerSideWebSocket(null, undefined, SERVER_SIDE);
    this.ws = ws;
    (ws as Bridged)[BRIDGE] = this;
    ws.on('message', onMessage);
    ws.on('close', onClose);
    ws.on('error', onError);
    // ws's own server does this after its handshake; here the handshake was Tether's.
    ws.setSocket(socket, rest, receiverFor(maxMessageBytes) as Parameters<WebSocket['setSocket']>[2]);
    socket.resume();
  }

  override _read(): void {
    if (this.ws.isPaused) this.ws.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (this.ws.readyState !== WebSocket.OPEN) return callback();
    this.ws.send(chunk, BINARY, callback);
  }

  /** The broker ended its side: close the WebSocket properly (a Close frame, not a reset). */
  override _final(callback: (error?: Error | null) => void): void {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.close(CLOSE.normal);
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (this.ws.readyState !== WebSocket.CLOSED) this.ws.terminate();
    callback(error);
  }
}

declare module 'ws' {
  interface WebSocket {
    /** Not in @types/ws: how ws's own server hands an upgraded socket to a WebSocket. */
    setSocket(socket: Socket, head: Buffer, options: { allowSynchronousEvents?: boolean; maxBufferedChunks?: number; maxFragments?: number; maxPayload?: number; skipUTF8Validation?: boolean }): void;
  }
}

function onMessage(this: WebSocket, data: Buffer, isBinary: boolean): void {
  const bridge = (this as Bridged)[BRIDGE];
  if (!isBinary) {
    this.close(CLOSE.unsupportedData, 'MQTT travels in binary frames only');
    return;
  }
  if (!bridge.push(data)) this.pause();
}

function onClose(this: WebSocket, code: number): void {
  const bridge = (this as Bridged)[BRIDGE];
  bridge.closeCode = code;
  bridge.push(null);
  // The client is gone: nothing more can be written to it.
  if (!bridge.writableEnded) bridge.end();
}

function onError(this: WebSocket, err: Error): void {
  (this as Bridged)[BRIDGE].destroy(err);
}
