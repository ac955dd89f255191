import { createServer, type Server, type Socket } from 'node:net';
import type { ListenerConfig } from '../config/types.ts';
import { formatHostPort, type HostPort } from './address.ts';
import { listen } from './listen.ts';

interface Bound {
  readonly server: Server;
  /** The address the configuration asked for (port 0 stays 0: an unchanged config keeps its port). */
  readonly configured: HostPort;
  /** Where it is bound. */
  readonly address: HostPort;
}

/** What binding a new listener list would change; nothing is closed until `commit`. */
export interface ListenerPlan {
  /** Puts the new list in place: listeners gone or moved stop accepting. Returns one line per change. */
  commit(): string[];
  /** Abandons the plan: closes what it bound. */
  rollback(): Promise<void>;
}

/**
 * The listening sockets, by listener name. A reload binds what is new or moved before anything
 * is closed, so a listener whose address is unchanged keeps its socket (no connection attempt is
 * refused) and one that moves is never missing; closing a listener only stops it accepting: the
 * connections it accepted go on.
 */
export class ListenerSet {
  #bound = new Map<string, Bound>();
  readonly #onConnection: (socket: Socket, listener: string) => void;

  constructor(onConnection: (socket: Socket, listener: string) => void) {
    this.#onConnection = onConnection;
  }

  /** Where each listener is bound, by name, in configuration order. */
  get addresses(): ReadonlyMap<string, HostPort> {
    return new Map([...this.#bound].map(([name, b]) => [name, b.address]));
  }

  /** Binds the listeners of `configs` that are new or whose address changed. Throws ListenError (after closing what it bound). */
  async prepare(configs: readonly ListenerConfig[]): Promise<ListenerPlan> {
    const next = new Map<string, Bound>();
    const fresh: Bound[] = [];
    try {
      for (const config of configs) {
        const kept = this.#bound.get(config.name);
        if (kept && sameAddress(kept.configured, config.address)) {
          next.set(config.name, kept);
          continue;
        }
        const bound = await this.#bind(config);
        fresh.push(bound);
        next.set(config.name, bound);
      }
    } catch (err) {
      await closeAll(fresh);
      throw err;
    }
    return {
      commit: () => this.#commit(next),
      rollback: () => closeAll(fresh),
    };
  }

  /** Stops accepting on every listener; resolves once all are closed. */
  close(): Promise<void> {
    const all = [...this.#bound.values()];
    this.#bound = new Map();
    return closeAll(all);
  }

  async #bind(config: ListenerConfig): Promise<Bound> {
    const server = createServer({ allowHalfOpen: true, noDelay: true });
    const name = config.name;
    server.on('connection', (socket: Socket) => this.#onConnection(socket, name));
    const option = name === 'main' ? '--listen (TETHER_LISTEN, config key listen)' : `listeners[name=${name}].address`;
    await listen(server, config.address, option);
    const at = server.address();
    return { server, configured: config.address, address: typeof at === 'object' && at ? { host: at.address, port: at.port } : config.address };
  }

  #commit(next: Map<string, Bound>): string[] {
    const changes: string[] = [];
    for (const [name, old] of this.#bound) {
      const now = next.get(name);
      if (now === old) continue;
      old.server.close();
      changes.push(now ? `listener ${name} moved ${formatHostPort(old.address)} → ${formatHostPort(now.address)}` : `listener ${name} on ${formatHostPort(old.address)} closed (its connections go on)`);
    }
    for (const [name, now] of next) if (!this.#bound.has(name)) changes.push(`listener ${name} opened on ${formatHostPort(now.address)}`);
    this.#bound = next;
    return changes;
  }
}

function sameAddress(a: HostPort, b: HostPort): boolean {
  return a.host === b.host && a.port === b.port;
}

function closeAll(bound: readonly Bound[]): Promise<void> {
  return Promise.all(bound.map((b) => new Promise<void>((resolve) => b.server.close(() => resolve())))).then(() => undefined);
}
