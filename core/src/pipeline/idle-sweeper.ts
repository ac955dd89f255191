import type { Socket } from 'node:net';

/** What the sweeper watches: two sockets and what to do when either side has been silent too long. */
export interface IdleWatched {
  readonly client: Socket;
  /** The TCP socket to the backend (under TLS, if a sink wrapped it). */
  readonly server: Socket;
  /** Called once, with `client_timeout` or `server_timeout`. */
  idle(reason: 'client_timeout' | 'server_timeout'): void;
  /** Sweeper bookkeeping: bytes moved on each side at the last tick, and when that last changed. */
  clientBytes: number;
  serverBytes: number;
  clientActiveAt: number;
  serverActiveAt: number;
}

/**
 * Idle timeouts for every spliced connection from one coarse timer (HAProxy's `timeout client` and
 * `timeout server`). Node's `socket.setTimeout` keeps a timer per socket and re-arms it on every
 * read and write; here a tick compares each socket's byte counters with the last tick's, so the
 * data path does no timer work at all and an idle connection holds no timer object. A timeout
 * fires between `timeout` and `timeout + tick` after the last byte.
 */
export class IdleSweeper {
  readonly #watched = new Set<IdleWatched>();
  readonly #clientMs: number;
  readonly #serverMs: number;
  readonly #tickMs: number;
  #timer: NodeJS.Timeout | undefined;

  /** A timeout of 0 turns that side's timeout off (HAProxy's default without one). */
  constructor(clientMs: number, serverMs: number) {
    this.#clientMs = clientMs > 0 ? clientMs : Infinity;
    this.#serverMs = serverMs > 0 ? serverMs : Infinity;
    // A tenth of the shorter timeout: precise enough for seconds-to-minutes timeouts, and at most one
    // tick a second for the usual ones.
    this.#tickMs = Math.min(Math.max(Math.floor(Math.min(this.#clientMs, this.#serverMs) / 10), 10), 1000);
  }

  /** False when both timeouts are off: nothing to watch. */
  get enabled(): boolean {
    return this.#clientMs !== Infinity || this.#serverMs !== Infinity;
  }

  get size(): number {
    return this.#watched.size;
  }

  watch(entry: IdleWatched): void {
    if (!this.enabled) return;
    const now = performance.now();
    entry.clientBytes = traffic(entry.client);
    entry.serverBytes = traffic(entry.server);
    entry.clientActiveAt = now;
    entry.serverActiveAt = now;
    this.#watched.add(entry);
    if (!this.#timer) {
      this.#timer = setInterval(() => this.#sweep(), this.#tickMs);
      this.#timer.unref();
    }
  }

  unwatch(entry: IdleWatched): void {
    this.#watched.delete(entry);
    if (this.#watched.size === 0 && this.#timer) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  }

  #sweep(): void {
    const now = performance.now();
    for (const entry of this.#watched) {
      const client = traffic(entry.client);
      if (client !== entry.clientBytes) {
        entry.clientBytes = client;
        entry.clientActiveAt = now;
      }
      const server = traffic(entry.server);
      if (server !== entry.serverBytes) {
        entry.serverBytes = server;
        entry.serverActiveAt = now;
      }
      const reason = now - entry.clientActiveAt >= this.#clientMs ? 'client_timeout' : now - entry.serverActiveAt >= this.#serverMs ? 'server_timeout' : undefined;
      if (reason) {
        this.unwatch(entry);
        entry.idle(reason);
      }
    }
  }
}

/** Bytes moved either way on a socket: the activity Node's own socket timeout watches. */
function traffic(socket: Socket): number {
  return socket.bytesRead + socket.bytesWritten;
}
