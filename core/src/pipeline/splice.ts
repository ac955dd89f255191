import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';

export interface SpliceOptions {
  readonly clientIdleMs: number;
  readonly serverIdleMs: number;
}

export interface SpliceResult {
  /** Why the connection ended: who closed first, or which idle timeout fired. */
  readonly reason: string;
  readonly bytesIn: number;
  readonly bytesOut: number;
}

/**
 * Joins client and backend after the sniffed bytes have been replayed. Bytes move with Node's
 * own pipe (back-pressure, no per-chunk work of ours). A side that ends half-closes the other;
 * a side that goes away lets the other flush what it holds and then closes it. `done` runs once,
 * when both sockets have closed. Returns a function that closes both at once, with a reason.
 *
 * `upstream` is what sinks returned (the socket itself, or a wrapper such as TLS);
 * `upstreamSocket` is the TCP socket under it, where the idle timeout lives.
 */
export function splice(client: Socket, upstreamSocket: Socket, upstream: Duplex, options: SpliceOptions, done: (result: SpliceResult) => void): (reason: string) => void {
  let reason: string | undefined;
  let open = 2;
  const note = (why: string): void => {
    reason ??= why;
  };
  const onClosed = (): void => {
    if (--open > 0) return;
    done({ reason: reason ?? 'closed', bytesIn: client.bytesRead, bytesOut: client.bytesWritten });
  };
  const release = (other: Duplex): void => {
    if (other.destroyed) return;
    if (other.writableEnded) {
      if (other.writableFinished) other.destroy();
      else other.once('finish', () => other.destroy());
      return;
    }
    other.end(() => other.destroy());
  };

  client.setNoDelay(true);
  upstreamSocket.setNoDelay(true);
  client.setTimeout(options.clientIdleMs, () => {
    note('client_timeout');
    client.destroy();
    upstream.destroy();
  });
  upstreamSocket.setTimeout(options.serverIdleMs, () => {
    note('server_timeout');
    upstream.destroy();
    client.destroy();
  });
  client.once('end', () => note('client_closed'));
  upstream.once('end', () => note('server_closed'));
  client.on('error', (err: NodeJS.ErrnoException) => note(`client_error_${err.code ?? 'unknown'}`));
  upstream.on('error', (err: NodeJS.ErrnoException) => note(`server_error_${err.code ?? 'unknown'}`));
  const clientClosed = (): void => {
    release(upstream);
    onClosed();
  };
  const upstreamClosed = (): void => {
    release(client);
    onClosed();
  };
  // A side that closed before we got here will not emit 'close' again.
  if (client.closed) clientClosed();
  else client.once('close', clientClosed);
  if (upstream.closed) upstreamClosed();
  else upstream.once('close', upstreamClosed);

  client.pipe(upstream);
  upstream.pipe(client);
  /** Ends the connection from our side (shutdown-sessions, stop) with the given reason. */
  return (why: string) => {
    note(why);
    client.destroy();
    upstream.destroy();
  };
}
