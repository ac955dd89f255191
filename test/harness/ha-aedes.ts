import { Aedes, type AedesOptions, type Client } from 'aedes';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { waitFor } from './poll.ts';

/** One MQTT session start as a broker saw it, with the session flag it answered. */
export interface HaLanding {
  readonly broker: string;
  readonly clientId: string;
  /** Which life of the broker saw it: 1 for the first start, 2 after the first restart, ... */
  readonly incarnation: number;
}

export interface HaAedesOptions {
  /** aedes authenticate hook, e.g. one that refuses, to make an mqtt health check fail. */
  readonly authenticate?: AedesOptions['authenticate'];
}

/**
 * An in-memory aedes broker on loopback that a failover test can take away and bring back on the
 * SAME port, as a real broker restart would: a new aedes (its sessions are gone, like a broker
 * without persistence) listening where the old one did, so Tether's configured address stays
 * valid. It can also stop accepting while its live connections go on, which is how a broker that
 * fails its health checks but still serves its clients looks from outside.
 *
 * The broker is the ground truth of the tests: it says who is connected to it, and every session
 * start it saw (across restarts) is kept in `landings`.
 */
export class HaAedes {
  readonly id: string;
  readonly host = '127.0.0.1';
  readonly landings: HaLanding[] = [];
  readonly #options: HaAedesOptions;
  readonly #sockets = new Set<Socket>();
  #port = 0;
  #aedes: Aedes | undefined;
  #server: Server | undefined;
  #incarnation = 0;

  private constructor(id: string, options: HaAedesOptions) {
    this.id = id;
    this.#options = options;
  }

  /** Starts a broker on a port the kernel picks (port 0). */
  static async start(id: string, options: HaAedesOptions = {}): Promise<HaAedes> {
    const broker = new HaAedes(id, options);
    await broker.#boot(0);
    return broker;
  }

  get port(): number {
    return this.#port;
  }

  /** `id=127.0.0.1:port`, the backend string Tether's config takes. */
  get spec(): string {
    return `${this.id}=${this.host}:${this.#port}`;
  }

  /** The current aedes instance (a new one after each restart). */
  get aedes(): Aedes {
    if (!this.#aedes) throw new Error(`${this.id} is not running`);
    return this.#aedes;
  }

  get running(): boolean {
    return this.#aedes !== undefined;
  }

  get incarnation(): number {
    return this.#incarnation;
  }

  /** Live TCP connections the broker holds right now (health checks included while they last). */
  get connectionCount(): number {
    return this.#sockets.size;
  }

  /** Whether a client with this id is connected to this broker now. */
  holds(clientId: string): boolean {
    const clients = (this.#aedes as unknown as { clients?: Record<string, { connected?: boolean } | undefined> } | undefined)?.clients;
    return clients?.[clientId]?.connected === true;
  }

  /** Stops accepting new connections; the live ones go on (a check would now be refused). */
  stopListening(): void {
    this.#server?.close();
    this.#server = undefined;
  }

  /** Takes the broker away: no listener, every connection reset, sessions gone with the aedes. */
  async kill(): Promise<void> {
    const aedes = this.#aedes;
    const server = this.#server;
    this.#aedes = undefined;
    this.#server = undefined;
    const serverClosed = server ? new Promise<void>((resolve) => server.close(() => resolve())) : Promise.resolve();
    for (const socket of this.#sockets) socket.destroy();
    await serverClosed;
    if (aedes) await new Promise<void>((resolve) => aedes.close(() => resolve()));
  }

  /** Brings a killed broker back on the same port, as a fresh broker with no sessions. */
  async restart(): Promise<void> {
    if (this.#aedes) throw new Error(`${this.id} is still running`);
    await this.#boot(this.#port);
  }

  /** Final teardown; safe to call whatever state the broker is in. */
  close(): Promise<void> {
    return this.kill();
  }

  async #boot(port: number): Promise<void> {
    const aedes = await Aedes.createBroker({ id: this.id, ...(this.#options.authenticate ? { authenticate: this.#options.authenticate } : {}) });
    const incarnation = ++this.#incarnation;
    aedes.on('client', (client: Client) => this.landings.push({ broker: this.id, clientId: client.id, incarnation }));
    const server = createServer((socket) => {
      this.#sockets.add(socket);
      socket.once('close', () => this.#sockets.delete(socket));
      aedes.handle(socket);
    });
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ host: this.host, port }, () => resolve());
      });
    } catch (err) {
      await new Promise<void>((resolve) => aedes.close(() => resolve()));
      throw new Error(`${this.id} could not listen on ${this.host}:${port}: ${(err as Error).message}`, { cause: err });
    }
    this.#port = (server.address() as AddressInfo).port;
    this.#server = server;
    this.#aedes = aedes;
  }
}

/** Starts `n` independent brokers named `${prefix}1..n`. */
export async function startHaBrokers(n: number, prefix = 'b'): Promise<HaAedes[]> {
  const brokers: HaAedes[] = [];
  try {
    for (let i = 1; i <= n; i++) brokers.push(await HaAedes.start(`${prefix}${i}`));
  } catch (err) {
    await Promise.all(brokers.map((b) => b.close()));
    throw err;
  }
  return brokers;
}

/** The broker that holds a connected client with this id, if any. */
export function holderOf(brokers: readonly HaAedes[], clientId: string): HaAedes | undefined {
  return brokers.find((b) => b.holds(clientId));
}

/**
 * Waits (bounded) until a broker holds `clientId` and returns it. aedes registers a client a moment
 * after its CONNACK is on the wire, so a test that has just seen the CONNACK polls for it.
 */
export function waitForHolder(brokers: readonly HaAedes[], clientId: string, among: readonly HaAedes[] = brokers): Promise<HaAedes> {
  return waitFor(() => holderOf(among, clientId), {
    what: () => `one of [${among.map((b) => b.id).join(', ')}] to hold ${clientId} (holder now: ${holderOf(brokers, clientId)?.id ?? 'none'})`,
  });
}
