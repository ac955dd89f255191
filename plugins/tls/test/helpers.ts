import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { createLogger, Stats, validateOptions, type Backend, type ConnectionError, type Logger, type TetherPlugin } from '@tether/core';
import type { ConnFacts, Transport } from '@tether/core';

/** What a plugin was created with, kept for assertions: its log lines, counters and lifetime. */
export interface Made<P> {
  readonly product: P;
  readonly logs: Record<string, unknown>[];
  readonly stats: Stats;
  readonly lifetime: AbortController;
}

/** Creates a plugin the way the core does: options validated by its schema, a real context. */
export async function make<P>(plugin: TetherPlugin, options: Record<string, unknown>, backends: readonly Backend[] = []): Promise<Made<P>> {
  const logs: Record<string, unknown>[] = [];
  const destination = { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) };
  const log: Logger = createLogger('debug', destination as Parameters<typeof createLogger>[1]);
  const stats = new Stats();
  const lifetime = new AbortController();
  const ctx = { log: log.child({ plugin: plugin.name }), stats: stats.scope(plugin.name.replace(/[^a-zA-Z0-9]+/g, '_')), now: Date.now, signal: lifetime.signal, backends };
  const product = (await plugin.create(ctx, validateOptions(plugin, options) as never)) as P;
  return { product, logs, stats, lifetime };
}

/** A loopback TCP server whose accepted sockets go to `onSocket`; port 0. `close` ends them all. */
export async function tcpServer(onSocket: (socket: Socket) => void): Promise<{ server: Server; port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createServer({ allowHalfOpen: true }, (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    onSocket(socket);
  });
  await new Promise<void>((resolve) => server.listen({ host: '127.0.0.1', port: 0 }, resolve));
  return {
    server,
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      for (const s of sockets) s.destroy();
    }),
  };
}

/** A fresh ConnFacts as the core makes one for an accepted socket, before any transport. */
export function freshFacts(socket: Socket): ConnFacts {
  return {
    remoteAddress: socket.remoteAddress ?? '',
    remotePort: socket.remotePort ?? 0,
    localAddress: socket.localAddress ?? '',
    localPort: socket.localPort ?? 0,
    family: 'IPv4',
    proxied: false,
    tls: undefined,
    listener: 'test',
    attributes: new Map(),
  };
}

/**
 * A transport under test behind a real loopback listener: each accepted socket goes through
 * `accept`, and the outcome (the TLS socket and facts, or the error) is what `next()` resolves.
 */
export async function transportServer(transport: Transport): Promise<{ port: number; next(): Promise<Accepted>; close(): Promise<void> }> {
  const outcomes: Promise<Accepted>[] = [];
  const waiting: ((p: Promise<Accepted>) => void)[] = [];
  const tcp = await tcpServer((socket) => {
    const facts = freshFacts(socket);
    const outcome = Promise.resolve()
      .then(() => transport.accept(socket, facts))
      .then((tls): Accepted => {
        tls.on('error', () => undefined);
        return { ok: true, socket: tls, facts };
      }, (error: unknown): Accepted => ({ ok: false, error: error as ConnectionError }));
    const waiter = waiting.shift();
    if (waiter) waiter(outcome);
    else outcomes.push(outcome);
  });
  return {
    port: tcp.port,
    next: () => {
      const ready = outcomes.shift();
      return within(ready ?? new Promise<Accepted>((resolve) => waiting.push((p) => void p.then(resolve))), 'the transport to accept or refuse a connection');
    },
    close: () => tcp.close(),
  };
}

export type Accepted = { ok: true; socket: Socket; facts: ConnFacts } | { ok: false; error: ConnectionError };

/** Rejects when `promise` has not settled within `ms` (every wait in these tests is bounded). */
export async function within<T>(promise: Promise<T>, what: string, ms = 10_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    })]);
  } finally {
    clearTimeout(timer);
  }
}

/** Resolves when the stream has closed (now or later). */
export function closed(stream: { destroyed: boolean; once(event: 'close', fn: () => void): unknown }): Promise<void> {
  return stream.destroyed ? Promise.resolve() : new Promise((resolve) => stream.once('close', () => resolve()));
}
