import type { Mosquitto } from './mosquitto.ts';
import { withTimeout } from './traffic-wait.ts';

/** A client session start as mosquitto logs it: `New client connected from A:P as ID (p5, c0, k60).` */
export interface MosquittoConnection {
  readonly broker: string;
  readonly clientId: string;
  /** Mosquitto's protocol tag: p1 = MQTT 3.1, p2 = 3.1.1, p5 = 5. */
  readonly protocol: string;
  /** Clean session (3.1.x) or clean start (5) as the broker understood it. */
  readonly clean: boolean;
}

type Waiter = (line: string) => boolean;

const CONNECTED = /New client connected from \S+ as (\S+) \((p\d), c(\d), k\d+/;

/**
 * Reads a mosquitto's log (the harness runs it with `log_dest stderr`) so tests can ask the broker
 * itself who connected, with which protocol level, and when it saw a client leave. Attach right
 * after starting the broker, before any client connects; earlier lines are not replayed.
 */
export class MosquittoLog {
  readonly name: string;
  readonly lines: string[] = [];
  readonly #waiters = new Set<Waiter>();
  #partial = '';

  constructor(name: string, mosquitto: Mosquitto) {
    this.name = name;
    mosquitto.process.stderr?.on('data', (chunk: Buffer) => {
      const text = this.#partial + chunk.toString('utf8');
      const lines = text.split('\n');
      this.#partial = lines.pop() ?? '';
      for (const line of lines) {
        this.lines.push(line);
        for (const waiter of [...this.#waiters]) if (waiter(line)) this.#waiters.delete(waiter);
      }
    });
  }

  /** Every connection of `clientId` this broker has logged so far. */
  connectionsOf(clientId: string): MosquittoConnection[] {
    return this.lines.flatMap((line) => {
      const c = this.#parse(line);
      return c && c.clientId === clientId ? [c] : [];
    });
  }

  /** The next connection of `clientId`; call before connecting, await after. */
  nextConnection(clientId: string, ms = 10_000, signal?: AbortSignal): Promise<MosquittoConnection> {
    return this.#next(ms, `${this.name} to log a connection of ${clientId}`, (line) => {
      const c = this.#parse(line);
      return c && c.clientId === clientId ? c : undefined;
    }, signal);
  }

  /** The next log line containing `text`; call before causing it, await after. */
  nextLine(text: string, ms = 10_000): Promise<string> {
    return this.#next(ms, `${this.name} to log "${text}"`, (line) => (line.includes(text) ? line : undefined));
  }

  #parse(line: string): MosquittoConnection | undefined {
    const m = CONNECTED.exec(line);
    return m ? { broker: this.name, clientId: m[1]!, protocol: m[2]!, clean: m[3] === '1' } : undefined;
  }

  #next<T>(ms: number, what: string, match: (line: string) => T | undefined, signal?: AbortSignal): Promise<T> {
    let waiter: Waiter | undefined;
    const promise = new Promise<T>((resolve, reject) => {
      waiter = (line) => {
        const value = match(line);
        if (value === undefined) return false;
        resolve(value);
        return true;
      };
      this.#waiters.add(waiter);
      signal?.addEventListener('abort', () => reject(new Error(`stopped waiting for ${what}`)), { once: true });
    });
    return withTimeout(promise, ms, what).finally(() => this.#waiters.delete(waiter!));
  }
}

/**
 * The next connection of `clientId` on whichever of `logs` logs it first (one TCP connection
 * reaches exactly one broker); the waits on the other brokers are then dropped.
 */
export async function nextConnectionOnAny(logs: readonly MosquittoLog[], clientId: string, ms = 10_000): Promise<MosquittoConnection> {
  const stop = new AbortController();
  const pending = logs.map((log) => log.nextConnection(clientId, ms, stop.signal));
  try {
    return await Promise.any(pending);
  } finally {
    stop.abort();
    for (const p of pending) p.catch(() => undefined);
  }
}
