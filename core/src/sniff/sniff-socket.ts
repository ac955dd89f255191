import type { Socket } from 'node:net';
import type { IConnectPacket } from 'mqtt-packet';
import { Observable } from 'rxjs';
import { ClientClosedError, SniffTimeoutError } from '../errors.ts';
import type { Opening } from '../websocket/opening-reader.ts';
import { inspectConnect } from './connect-sniffer.ts';

export interface Sniffed {
  readonly packet: IConnectPacket;
  /** Every byte read from the client so far: the CONNECT and anything sent after it. */
  readonly bytes: Buffer;
  readonly sniffMs: number;
  /** For a client of a WebSocket listener: its opening (request, raw frames); `bytes` are then the MQTT bytes the frames carried. */
  readonly websocket?: Opening;
}

export interface SniffOptions {
  readonly maxBytes: number;
  readonly timeoutMs: number;
  /** Refuse what the specification calls malformed even where mqtt-packet parses it (`sniff.strict`). */
  readonly strict?: boolean;
}

/**
 * Reads from the client until its first packet is a complete CONNECT, then pauses the socket and
 * emits what was read. Bytes are kept, not consumed: the splice replays them to the broker. Emits
 * a typed ConnectionError for a foreign, oversized or incomplete first packet.
 */
export function sniffConnect(socket: Socket, options: SniffOptions): Observable<Sniffed> {
  return new Observable<Sniffed>((subscriber) => {
    const started = performance.now();
    let chunks: Buffer[] = [];
    let received = 0;
    // Bytes needed before looking again: the header tells the CONNECT's full length, so a CONNECT
    // trickling in one byte per write is joined once, not once per byte.
    let needed = 1;
    const onData = (chunk: Buffer): void => {
      chunks.push(chunk);
      received += chunk.length;
      if (received < needed) return;
      const view = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, received);
      chunks = [view];
      const result = inspectConnect(view, options.maxBytes, options.strict ?? true);
      if (result.kind === 'need-more') {
        needed = result.atLeast ?? received + 1;
        return;
      }
      // Pause before our listener goes: a flowing socket with no 'data' listener drops bytes.
      socket.pause();
      clearTimeout(timer);
      if (result.kind === 'reject') return subscriber.error(result.error);
      subscriber.next({ packet: result.packet, bytes: view, sniffMs: performance.now() - started });
      subscriber.complete();
    };
    const onEnd = (): void => subscriber.error(new ClientClosedError(received));
    const onError = (err: Error): void => subscriber.error(err);
    if (socket.destroyed || socket.readableEnded) {
      subscriber.error(new ClientClosedError(0));
      return undefined;
    }
    // A plain timer rather than RxJS's timeout operator: fewer objects per connection.
    const timer = setTimeout(() => subscriber.error(new SniffTimeoutError(options.timeoutMs, socket.bytesRead)), options.timeoutMs);
    socket.on('data', onData);
    socket.once('end', onEnd);
    socket.once('close', onEnd);
    socket.once('error', onError);
    return () => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('close', onEnd);
      socket.off('error', onError);
    };
  });
}
