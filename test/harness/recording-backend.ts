import { EventEmitter } from 'node:events';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';

/** One TCP connection the recording backend accepted, with every byte it received, in order. */
export class RecordedConnection {
  readonly socket: Socket;
  readonly #chunks: Buffer[] = [];
  /** The backend saw the peer's FIN (half-close): no more bytes will come from Tether. */
  ended = false;
  closed = false;

  constructor(socket: Socket) {
    this.socket = socket;
    // Our own listener sees the bytes even when they are also piped to a broker.
    socket.on('data', (chunk: Buffer) => this.#chunks.push(chunk));
    socket.once('end', () => (this.ended = true));
    socket.once('close', () => (this.closed = true));
  }

  /** Every byte received so far, concatenated. */
  bytes(): Buffer {
    return Buffer.concat(this.#chunks);
  }

  get length(): number {
    let n = 0;
    for (const c of this.#chunks) n += c.length;
    return n;
  }
}

export interface RecordingBackendOptions {
  /** Name used in Tether's `backends` list (`name=127.0.0.1:port`). */
  readonly id?: string;
  /**
   * Relay every connection to this broker (a transparent TCP proxy in front of it), so a test gets
   * both a byte-exact record and a real broker's answers. Without it the backend only records and
   * the test drives its side of each connection through `socket`.
   */
  readonly forwardTo?: { readonly host: string; readonly port: number };
}

/**
 * A raw TCP server on 127.0.0.1:0 that records every byte of every connection it accepts. It lets
 * a test prove what Tether sent to a backend (and that it opened no connection at all), which a
 * broker cannot show: a broker parses and discards bytes.
 */
export class RecordingBackend extends EventEmitter {
  readonly id: string;
  readonly connections: RecordedConnection[] = [];
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  #port = 0;

  private constructor(id: string, server: Server) {
    super();
    this.id = id;
    this.#server = server;
  }

  static async start(options: RecordingBackendOptions = {}): Promise<RecordingBackend> {
    // allowHalfOpen: a FIN from Tether must be observable as 'end' while this side can still write.
    const server = createServer({ allowHalfOpen: true });
    const backend = new RecordingBackend(options.id ?? 'rec', server);
    server.on('connection', (socket) => backend.#accept(socket, options.forwardTo));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: '127.0.0.1', port: 0 }, () => resolve());
    });
    backend.#port = (server.address() as AddressInfo).port;
    return backend;
  }

  get port(): number {
    return this.#port;
  }

  /** This backend as an entry of Tether's `backends` option. */
  get spec(): string {
    return `${this.id}=127.0.0.1:${this.#port}`;
  }

  /** Destroys every connection and stops listening. */
  async close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #accept(socket: Socket, forwardTo: RecordingBackendOptions['forwardTo']): void {
    this.#sockets.add(socket);
    socket.once('close', () => this.#sockets.delete(socket));
    // A reset from Tether is an outcome some tests provoke, not a test failure.
    socket.on('error', () => undefined);
    const recorded = new RecordedConnection(socket);
    this.connections.push(recorded);
    if (forwardTo) {
      const broker = connect({ host: forwardTo.host, port: forwardTo.port, allowHalfOpen: true });
      this.#sockets.add(broker);
      broker.once('close', () => this.#sockets.delete(broker));
      broker.on('error', () => socket.destroy());
      socket.once('close', () => broker.destroy());
      broker.once('close', () => socket.destroy());
      // pipe() carries FIN both ways; writes before the broker connection is up are queued by net.
      socket.pipe(broker);
      broker.pipe(socket);
    }
    this.emit('connection', recorded);
  }
}
