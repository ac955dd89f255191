import type { Socket } from 'node:net';
import type { IConnectPacket } from 'mqtt-packet';
import type { Observable } from 'rxjs';
import { SniffTimeoutError } from '../errors.ts';
import type { Opening } from '../websocket/opening-reader.ts';
import { inspectConnect } from './connect-sniffer.ts';
import { sniffFirstBytes } from './sniff-driver.ts';

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
  const strict = options.strict ?? true;
  return sniffFirstBytes<Sniffed>(
    socket,
    options.timeoutMs,
    (view, started) => {
      const result = inspectConnect(view, options.maxBytes, strict);
      return result.kind === 'done' ? { kind: 'done', value: { packet: result.packet, bytes: view, sniffMs: performance.now() - started } } : result;
    },
    () => new SniffTimeoutError(options.timeoutMs, socket.bytesRead),
  );
}
