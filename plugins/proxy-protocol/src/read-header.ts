import type { Socket } from 'node:net';
import { ProxyClientClosedError, ProxyHeaderInvalidError, ProxyHeaderMissingError, ProxyHeaderTimeoutError } from './errors.ts';
import { inspectProxyHeader, type ProxyHeader } from './proxy-parser.ts';

export interface ReadHeaderOptions {
  readonly timeoutMs: number;
  readonly maxBytes: number;
  /** Hand over a connection that starts with something else instead of refusing it. */
  readonly optional: boolean;
}

/**
 * Reads one PROXY header off `socket`, however it is split across packets, and leaves every byte
 * after it in the socket for the next stage (TLS, the CONNECT sniffer): they are pushed back with
 * `unshift`. Resolves with the header, or with undefined when `optional` and the connection does
 * not start with one (then nothing is consumed). Rejects with a ConnectionError otherwise.
 *
 * It reads in paused mode ('readable' + read()) rather than with 'data': once our listener is
 * gone the socket is left neither flowing nor explicitly paused, so the next stage's 'data'
 * listener starts the flow, and a TLSSocket built over it finds the pushed-back bytes.
 */
export function readProxyHeader(socket: Socket, options: ReadHeaderOptions): Promise<ProxyHeader | undefined> {
  return new Promise<ProxyHeader | undefined>((resolve, reject) => {
    let view: Buffer = Buffer.alloc(0);
    // Bytes needed before looking again: a v2 header announces its length, so a header trickling
    // in byte by byte is joined once it is whole, not once per byte.
    let needed = 1;
    const cleanup = (): void => {
      clearTimeout(timer);
      socket.off('readable', onReadable);
      socket.off('end', onEnd);
      socket.off('close', onEnd);
      socket.off('error', onError);
    };
    const fail = (err: Error): void => {
      cleanup();
      reject(err);
    };
    const handOver = (header: ProxyHeader | undefined, rest: Buffer): void => {
      cleanup();
      if (rest.length > 0) socket.unshift(rest);
      resolve(header);
    };
    const onReadable = (): void => {
      const chunks = [view];
      for (let chunk: Buffer | null = socket.read() as Buffer | null; chunk !== null; chunk = socket.read() as Buffer | null) chunks.push(chunk);
      if (chunks.length === 1) return;
      view = Buffer.concat(chunks);
      if (view.length < needed) return;
      const result = inspectProxyHeader(view, options.maxBytes);
      if (result.kind === 'need-more') {
        needed = result.atLeast ?? view.length + 1;
        return;
      }
      if (result.kind === 'done') return handOver(result.header, view.subarray(result.length));
      if (result.reason === 'missing' && options.optional) return handOver(undefined, view);
      fail(result.reason === 'missing' ? new ProxyHeaderMissingError(result.detail) : new ProxyHeaderInvalidError(result.detail));
    };
    const onEnd = (): void => fail(new ProxyClientClosedError(view.length));
    const onError = (err: Error): void => fail(err);
    const timer = setTimeout(() => fail(new ProxyHeaderTimeoutError(options.timeoutMs, view.length)), options.timeoutMs);
    if (socket.destroyed || socket.readableEnded) return fail(new ProxyClientClosedError(0));
    socket.on('readable', onReadable);
    socket.once('end', onEnd);
    socket.once('close', onEnd);
    socket.once('error', onError);
  });
}
