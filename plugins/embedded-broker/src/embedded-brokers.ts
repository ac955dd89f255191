import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { Aedes } from 'aedes';
import mqemitter, { type MQEmitter } from 'mqemitter';
import persistenceModule from 'aedes-persistence';

export interface EmbeddedBroker {
  readonly id: string;
  readonly host: string;
  readonly port: number;
  /** The aedes instance, for tests that want to look at connected clients. */
  readonly aedes: Aedes;
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
    for (let i = 1; i <= count; i++) brokers.push(await startBroker(`embedded${i}`, host, shared && { mq: keepOpen(shared.mq), persistence: shared.persistence }));
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

async function startBroker(id: string, host: string, shared: { mq: MQEmitter; persistence: unknown } | undefined): Promise<EmbeddedBroker> {
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
  let closing: Promise<void> | undefined;
  return {
    id,
    host,
    port,
    aedes,
    close: () =>
      (closing ??= new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => aedes.close(() => resolve()));
      })),
  };
}
