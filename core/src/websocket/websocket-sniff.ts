import type { Socket } from 'node:net';
import type { Observable } from 'rxjs';
import { WebSocketRejectError } from '../errors.ts';
import { sniffFirstBytes } from '../sniff/sniff-driver.ts';
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
  const reader = new OpeningReader(websocket, options.maxBytes, options.strict ?? true);
  return sniffFirstBytes<Sniffed>(
    socket,
    options.timeoutMs,
    (view, started) => {
      let result = reader.inspect(view);
      if (result.kind === 'upgrade') {
        socket.write(result.upgrade.response);
        result = reader.inspect(view); // the frames that came with the request, if any
      }
      switch (result.kind) {
        case 'upgrade': // not reached: a second inspect reads frames
        case 'need-more':
          return { kind: 'need-more', ...(result.kind === 'need-more' && result.atLeast !== undefined ? { atLeast: result.atLeast } : {}) };
        case 'reject':
          return result;
        case 'done': {
          const { opening } = result;
          return { kind: 'done', value: { packet: opening.packet, bytes: opening.mqtt, sniffMs: performance.now() - started, websocket: opening } };
        }
      }
    },
    () => {
      const phase = reader.upgraded ? 'no MQTT CONNECT after the WebSocket upgrade' : 'no complete WebSocket upgrade request';
      return new WebSocketRejectError('sniff_timeout', `${phase} within ${options.timeoutMs} ms (${socket.bytesRead} bytes received)`, reader.timeoutReply());
    },
  );
}
