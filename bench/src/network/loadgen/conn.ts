import { connect, type Socket } from 'node:net';
import { FrameReader, type FrameHandler } from '../mqtt-frames.ts';
import { DISCONNECT } from './packets.ts';
import type { Endpoint } from './protocol.ts';
import { WsClientCodec } from './ws-client-codec.ts';

/** How long a client waits for the server to close after DISCONNECT before closing itself. */
const CLOSE_WAIT_MS = 2_000;

interface Waiter {
  readonly type: number;
  readonly resolve: (body: Buffer) => void;
  readonly reject: (err: Error) => void;
}

/**
 * One load-generator connection: a raw socket, a frame splitter, and either one awaited packet at
 * a time (`expect`) or a handler for every packet (`onFrame`, for pipelined QoS 1). There is no
 * timer per operation: a command's hard limit destroys what is still open (see Tracker), and a
 * destroyed connection rejects what it was waiting for.
 */
export class BenchConn {
  readonly socket: Socket;
  readonly closed: Promise<void>;
  isClosed = false;
  error: Error | undefined;
  onFrame: FrameHandler | undefined;
  #waiter: Waiter | undefined;
  /** Over WebSocket: the codec, and what was sent before the 101 (a client waits for it). */
  readonly #ws: WsClientCodec | undefined;
  #queued: Buffer[] = [];

  constructor(endpoint: Endpoint) {
    const { host, port } = endpoint;
    this.socket = connect({ host, port, noDelay: true });
    const reader = new FrameReader((type, flags, body) => {
      const waiter = this.#waiter;
      if (waiter && waiter.type === type) {
        this.#waiter = undefined;
        waiter.resolve(Buffer.from(body));
      } else this.onFrame?.(type, flags, body);
    });
    const ws = endpoint.websocket === undefined ? undefined : new WsClientCodec((payload) => reader.push(payload), (bytes) => this.socket.write(bytes));
    this.#ws = ws;
    if (ws) this.socket.write(WsClientCodec.request(host, port, endpoint.websocket!));
    this.socket.on('data', (chunk: Buffer) => {
      try {
        if (ws === undefined) return reader.push(chunk);
        const before = ws.upgraded;
        ws.push(chunk);
        if (!before && ws.upgraded) for (const bytes of this.#queued.splice(0)) this.socket.write(WsClientCodec.frame(bytes));
      } catch (err) {
        this.error ??= err as Error;
        this.socket.destroy();
      }
    });
    this.socket.on('error', (err) => (this.error ??= err));
    this.closed = new Promise((resolve) =>
      this.socket.once('close', () => {
        this.isClosed = true;
        const waiter = this.#waiter;
        this.#waiter = undefined;
        waiter?.reject(this.error ?? new Error('connection closed by peer'));
        resolve();
      }),
    );
  }

  /** Writes `bytes` (queued by Node until the TCP connection is up). */
  send(bytes: Buffer): boolean {
    const ws = this.#ws;
    if (ws === undefined) return this.socket.write(bytes);
    if (ws.upgraded) return this.socket.write(WsClientCodec.frame(bytes));
    this.#queued.push(bytes);
    return true;
  }

  /** The body of the next packet of `type` (a copy); rejects if the connection closes first. */
  expect(type: number): Promise<Buffer> {
    if (this.isClosed) return Promise.reject(this.error ?? new Error('connection closed'));
    return new Promise((resolve, reject) => {
      this.#waiter = { type, resolve, reject };
    });
  }

  /**
   * DISCONNECT, then wait for the server to close (it must, [MQTT-3.14.4-1]); that leaves the
   * TIME_WAIT on the server side instead of on our ephemeral ports. Closes itself after a while.
   */
  async disconnect(): Promise<void> {
    if (this.isClosed) return;
    this.send(DISCONNECT);
    const timer = setTimeout(() => this.socket.destroy(), CLOSE_WAIT_MS);
    await this.closed;
    clearTimeout(timer);
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/**
 * The live connections of one command and its hard limit: when the limit passes, `expired` turns
 * true and every connection still open is destroyed, so every await in the command ends.
 */
export class Tracker {
  readonly #live = new Set<BenchConn>();
  readonly #timer: NodeJS.Timeout;
  expired = false;
  errors = 0;
  firstError: string | undefined;

  constructor(limitMs: number) {
    this.#timer = setTimeout(() => {
      this.expired = true;
      this.fail(new Error(`time limit of ${limitMs} ms reached`));
      for (const conn of this.#live) conn.destroy();
    }, limitMs);
  }

  open(endpoint: Endpoint): BenchConn {
    const conn = new BenchConn(endpoint);
    this.#live.add(conn);
    void conn.closed.then(() => this.#live.delete(conn));
    return conn;
  }

  fail(err: unknown): void {
    this.errors++;
    this.firstError ??= err instanceof Error ? err.message : String(err);
  }

  /** Destroys whatever is left and stops the limit timer. */
  finish(): void {
    clearTimeout(this.#timer);
    for (const conn of this.#live) conn.destroy();
  }

  /** Stops the limit timer and leaves the connections open (for `hold`). */
  keep(): void {
    clearTimeout(this.#timer);
  }
}
