import type { Socket } from 'node:net';
import type { IConnectPacket } from 'mqtt-packet';
import { Observable, throwError, timeout } from 'rxjs';
import { ClientClosedError, SniffTimeoutError } from '../errors.ts';
import { inspectConnect } from './connect-sniffer.ts';

export interface Sniffed {
  readonly packet: IConnectPacket;
  /** Every byte read from the client so far: the CONNECT and anything sent after it. */
  readonly bytes: Buffer;
  readonly sniffMs: number;
}

export interface SniffOptions {
  readonly maxBytes: number;
  readonly timeoutMs: number;
}

/**
 * Reads from the client until its first packet is a complete CONNECT, then pauses the socket and
 * emits what was read. Bytes are kept, not consumed: the splice replays them to the broker. Emits
 * a typed ConnectionError for a foreign, oversized or incomplete first packet.
 */
export function sniffConnect(socket: Socket, options: SniffOptions): Observable<Sniffed> {
  return new Observable<Sniffed>((subscriber) => {
    const started = performance.now();
    let buffered: Buffer | undefined;
    const onData = (chunk: Buffer): void => {
      buffered = buffered ? Buffer.concat([buffered, chunk]) : chunk;
      const result = inspectConnect(buffered, options.maxBytes);
      if (result.kind === 'need-more') return;
      // Pause before our listener goes: a flowing socket with no 'data' listener drops bytes.
      socket.pause();
      if (result.kind === 'reject') return subscriber.error(result.error);
      subscriber.next({ packet: result.packet, bytes: buffered, sniffMs: performance.now() - started });
      subscriber.complete();
    };
    const onEnd = (): void => subscriber.error(new ClientClosedError(buffered?.length ?? 0));
    const onError = (err: Error): void => subscriber.error(err);
    socket.on('data', onData);
    socket.once('end', onEnd);
    socket.once('error', onError);
    return () => {
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('error', onError);
    };
  }).pipe(
    timeout({
      first: options.timeoutMs,
      with: () => throwError(() => new SniffTimeoutError(options.timeoutMs, socket.bytesRead)),
    }),
  );
}
