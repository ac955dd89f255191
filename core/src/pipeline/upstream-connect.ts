import { connect, type Socket } from 'node:net';
import { UpstreamConnectError, describe } from '../errors.ts';
import type { Backend } from '../plugin.ts';

/**
 * Opens the TCP connection to a backend, bounded by `timeoutMs` (HAProxy's timeout connect).
 * Half-open is allowed so a client's FIN reaches the broker while replies still flow back.
 */
export function connectUpstream(backend: Backend, timeoutMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: backend.host, port: backend.port, allowHalfOpen: true, noDelay: true });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new UpstreamConnectError(backend.id, `connect timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    const onError = (err: NodeJS.ErrnoException): void => {
      clearTimeout(timer);
      reject(new UpstreamConnectError(backend.id, `connect failed: ${err.code ?? describe(err)}`, { cause: err }));
    };
    socket.once('error', onError);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.off('error', onError);
      // Until the splice listens, a reset from the broker must not be an uncaught 'error';
      // the splice learns of it through 'close'. A shared function: a closure made here would keep
      // this whole scope (timer included) alive for the life of the connection.
      socket.on('error', ignore);
      resolve(socket);
    });
  });
}

function ignore(): void {}
