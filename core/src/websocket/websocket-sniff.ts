import type { Socket } from 'node:net';
import { Observable } from 'rxjs';
import { ClientClosedError, WebSocketRejectError } from '../errors.ts';
import type { Sniffed, SniffOptions } from '../sniff/sniff-socket.ts';
import { OpeningReader } from './opening-reader.ts';
import type { WebSocketListenerOptions } from './websocket-handshake.ts';

/**
 * The sniff of a WebSocket listener: reads the Upgrade request, answers 101, then reads frames
 * until they carry a complete CONNECT, and emits it with the opening (request and raw frames).
 * One timer bounds the whole opening (`sniff.timeout`), as for a TCP client; the socket is paused
 * when it emits. Refusals are WebSocketRejectErrors with the HTTP response or Close frame to send.
 */
export function sniffWebSocket(socket: Socket, options: SniffOptions, websocket: WebSocketListenerOptions): Observable<Sniffed> {
  return new Observable<Sniffed>((subscriber) => {
    const started = performance.now();
    const reader = new OpeningReader(websocket, options.maxBytes, options.strict ?? true);
    let chunks: Buffer[] = [];
    let received = 0;
    let needed = 1;
    const onData = (chunk: Buffer): void => {
      chunks.push(chunk);
      received += chunk.length;
      if (received < needed) return;
      const view = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, received);
      chunks = [view];
      let result = reader.inspect(view);
      if (result.kind === 'upgrade') {
        socket.write(result.upgrade.response);
        result = reader.inspect(view);
      }
      if (result.kind === 'need-more') {
        needed = result.atLeast ?? received + 1;
        return;
      }
      if (result.kind === 'upgrade') return; // not reached: a second inspect reads frames
      socket.pause();
      clearTimeout(timer);
      if (result.kind === 'reject') return subscriber.error(result.error);
      const { opening } = result;
      subscriber.next({ packet: opening.packet, bytes: opening.mqtt, sniffMs: performance.now() - started, websocket: opening });
      subscriber.complete();
    };
    const onEnd = (): void => subscriber.error(new ClientClosedError(received));
    const onError = (err: Error): void => subscriber.error(err);
    if (socket.destroyed || socket.readableEnded) {
      subscriber.error(new ClientClosedError(0));
      return undefined;
    }
    const timer = setTimeout(() => {
      const phase = reader.upgraded ? 'no MQTT CONNECT after the WebSocket upgrade' : 'no complete WebSocket upgrade request';
      subscriber.error(new WebSocketRejectError('sniff_timeout', `${phase} within ${options.timeoutMs} ms (${socket.bytesRead} bytes received)`, reader.timeoutReply()));
    }, options.timeoutMs);
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
