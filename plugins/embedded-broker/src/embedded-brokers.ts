import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { createWebSocketStream, WebSocketServer } from 'ws';
import { Aedes } from 'aedes';
import mqemitter, { type MQEmitter } from 'mqemitter';
import persistenceModule from 'aedes-persistence';

export interface EmbeddedBroker {
  readonly id: string;
  readonly host: string;
  readonly port: number;
  /** The aedes instance, for tests that want to look at connected clients. */
  readonly aedes: Aedes;
  /** With `websocket: true`: the port of the broker's own WebSocket endpoint (path `/mqtt`). */
  readonly wsPort?: number;
  /** With `websocket: true`: its server, for tests that want to see the Upgrade requests ('connection', (ws, req)). */
  readonly wss?: WebSocketServer;
  close(): Promise<void>;
}

export interface EmbeddedOptions {
  readonly host?: string;
  /**
   * Make the brokers a small cluster, like the seed's EMQX nodes: one message routing and one
   * session store, so a message published on one broker reaches subscribers on all (default).
   * With false they are independent brokers: a client that lands on another broker loses its
   * session, which is what tests of stickiness want to see.
   */
  readonly cluster?: boolean;
  /**
   * Also serve MQTT over WebSocket on a second free port (path `/mqtt`, subprotocols `mqtt` and
   * `mqttv3.1`), like the seed's brokers on 8083: a backend for Tether's WebSocket pass-through.
   */
  readonly websocket?: boolean;
}

/**
 * Starts `count` in-memory aedes brokers on loopback, each on a free port, so `tether start`
 * with no backends configured still gives a working two-broker demo. Not for production: sessions
 * live in memory and disappear with the process.
 */
export async function startEmbeddedBrokers(count: number, options: EmbeddedOptions = {}): Promise<EmbeddedBroker[]> {
  const host = options.host ?? '127.0.0.1';
  const shared = options.cluster === false ? undefined : {
    mq: mqemitter({ concurrency: 100, matchEmptyLevels: true }),
    persistence: aedesMemoryPersistence(),
  };
  const brokers: EmbeddedBroker[] = [];
  try {
    for (let i = 1; i <= count; i++) brokers.push(await startBroker(`embedded${i}`, host, shared && { mq: keepOpen(shared.mq), persistence: shared.persistence }, options.websocket === true));
  } catch (err) {
    await Promise.all(brokers.map((b) => b.close()));
    throw err;
  }
  return brokers;
}

// aedes-persistence is CommonJS whose module.exports is the factory; its types describe an ES default.
const aedesMemoryPersistence = persistenceModule as unknown as () => object;

/** One broker closing must not close the emitter the others still route through. */
function keepOpen(mq: MQEmitter): MQEmitter {
  return new Proxy(mq, {
    get(target, prop) {
      if (prop === 'close') return (cb?: () => void) => cb?.();
      const value = Reflect.get(target, prop) as unknown;
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

async function startBroker(id: string, host: string, shared: { mq: MQEmitter; persistence: unknown } | undefined, websocket: boolean): Promise<EmbeddedBroker> {
  const aedes = await Aedes.createBroker({ id, ...(shared as object) });
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    aedes.handle(socket);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port: 0 }, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const wss = websocket ? await startWebSocketEndpoint(aedes, host) : undefined;
  let closing: Promise<void> | undefined;
  return {
    id,
    host,
    port,
    aedes,
    ...(wss ? { wss, wsPort: (wss.address() as AddressInfo).port } : {}),
    close: () =>
      (closing ??= new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        for (const client of wss?.clients ?? []) client.terminate();
        wss?.close();
        server.close(() => aedes.close(() => resolve()));
      })),
  };
}

const SUBPROTOCOLS = ['mqtt', 'mqttv3.1'];

/** MQTT over WebSocket on a free port, path /mqtt: each connection is a stream aedes reads like a socket. */
async function startWebSocketEndpoint(aedes: Aedes, host: string): Promise<WebSocketServer> {
  const wss = new WebSocketServer({ host, port: 0, path: '/mqtt', handleProtocols: (offered) => SUBPROTOCOLS.find((p) => offered.has(p)) ?? false });
  await new Promise<void>((resolve, reject) => {
    wss.once('error', reject);
    wss.once('listening', () => resolve());
  });
  wss.on('connection', (ws, req) => {
    const stream = createWebSocketStream(ws);
    stream.on('error', () => stream.destroy());
    aedes.handle(stream, req);
  });
  return wss;
}
