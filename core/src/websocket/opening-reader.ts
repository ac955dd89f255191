import type { IConnectPacket } from 'mqtt-packet';
import { ClientClosedError, SniffTooLargeError, WebSocketRejectError, type ConnectionError } from '../errors.ts';
import { inspectConnect } from '../sniff/connect-sniffer.ts';
import { readRequestHead, type RequestHead } from './http-request-head.ts';
import { checkUpgrade, httpError, reject, type Upgrade, type WebSocketListenerOptions } from './websocket-handshake.ts';
import { CLOSE, closeFrame, OPCODE, readFrame, unmaskedPayload } from './websocket-frames.ts';

/** A WebSocket opening read up to its MQTT CONNECT. */
export interface Opening {
  readonly head: RequestHead;
  readonly upgrade: Upgrade;
  readonly packet: IConnectPacket;
  /** The MQTT bytes the frames carried: the CONNECT and whatever followed it in the same messages. */
  readonly mqtt: Buffer;
  /** The request head exactly as the client sent it. */
  readonly request: Buffer;
  /** The whole frames read, exactly as the client sent them (masked). */
  readonly frames: Buffer;
  /** Bytes after the last whole frame read (the start of the next frame), to hand on unread. */
  readonly rest: Buffer;
}

export type OpeningResult =
  | { readonly kind: 'need-more'; readonly atLeast?: number }
  /** The request is a valid upgrade: send `upgrade.response`, then keep reading. */
  | { readonly kind: 'upgrade'; readonly upgrade: Upgrade }
  | { readonly kind: 'done'; readonly opening: Opening }
  | { readonly kind: 'reject'; readonly error: ConnectionError };

const NEED_MORE: OpeningResult = Object.freeze({ kind: 'need-more' });

/**
 * Reads a WebSocket opening the way the TCP sniff reads a CONNECT: the HTTP Upgrade request, then
 * the client's frames until their payload holds a complete MQTT CONNECT (masked, possibly
 * fragmented across frames and TCP segments, possibly after control frames), and the rest of the
 * message that carries its end. Incremental and pure over the bytes received so far (`view`
 * grows between calls and is never changed), so a pass-through can replay them.
 *
 * Bounded: the head by `maxHeaderBytes`, the MQTT bytes by `maxBytes` (sniff.maxBytes), the raw
 * frames by twice that plus room for headers (tiny fragments and control frames cannot make it
 * buffer without end).
 */
export class OpeningReader {
  readonly #options: WebSocketListenerOptions;
  readonly #maxBytes: number;
  #head: RequestHead | undefined;
  #upgrade: Upgrade | undefined;
  /** Where the next frame starts. */
  #at = 0;
  #payloads: Buffer[] = [];
  #payloadLength = 0;
  /** A data message is open (a frame without FIN was read). */
  #inMessage = false;
  /** The CONNECT, once complete; reading goes on until the message that ends it is complete. */
  #packet: IConnectPacket | undefined;

  readonly #strict: boolean;

  /** `strict`: the CONNECT is checked as on a TCP listener (`sniff.strict`). */
  constructor(options: WebSocketListenerOptions, maxBytes: number, strict = true) {
    this.#options = options;
    this.#maxBytes = maxBytes;
    this.#strict = strict;
  }

  get upgraded(): boolean {
    return this.#upgrade !== undefined;
  }

  inspect(view: Buffer): OpeningResult {
    if (this.#head === undefined) return this.#readHead(view);
    return this.#readFrames(view);
  }

  /** The reply for a client that stays silent: 408 before the upgrade, a Close frame after it. */
  timeoutReply(): Buffer {
    return this.#upgrade === undefined ? httpError(408, 'no complete WebSocket upgrade request in time') : closeFrame(CLOSE.protocolError, 'no MQTT CONNECT in time');
  }

  #readHead(view: Buffer): OpeningResult {
    const result = readRequestHead(view, this.#options.maxHeaderBytes);
    switch (result.kind) {
      case 'need-more':
        return NEED_MORE;
      case 'too-large':
        return { kind: 'reject', error: reject('ws_headers_too_large', 431, `request head exceeds ${this.#options.maxHeaderBytes} bytes`) };
      case 'malformed':
        return { kind: 'reject', error: reject('ws_not_http', 400, `not an HTTP request: ${result.detail}`) };
    }
    try {
      this.#upgrade = checkUpgrade(result.head, this.#options);
    } catch (err) {
      return { kind: 'reject', error: err as WebSocketRejectError };
    }
    this.#head = result.head;
    this.#at = result.head.length;
    return { kind: 'upgrade', upgrade: this.#upgrade };
  }

  #readFrames(view: Buffer): OpeningResult {
    const head = this.#head!;
    for (;;) {
      if (this.#at - head.length > 2 * this.#maxBytes + 1024) return closeWith('sniff_too_large', CLOSE.tooBig, `frames before the CONNECT exceed ${2 * this.#maxBytes + 1024} bytes`);
      const result = readFrame(view, this.#at, this.#maxBytes);
      if (result.kind === 'need-more') return { kind: 'need-more', atLeast: result.atLeast };
      if (result.kind === 'too-large') return { kind: 'reject', error: withClose(new SniffTooLargeError(result.declared, this.#maxBytes), CLOSE.tooBig, 'first message too large') };
      if (result.kind === 'malformed') return closeWith('ws_protocol_error', CLOSE.protocolError, result.detail);
      const frame = result.frame;
      if (!frame.masked) return closeWith('ws_unmasked_frame', CLOSE.protocolError, 'client frame is not masked (RFC 6455 5.1)');
      this.#at = frame.end;
      switch (frame.opcode) {
        case OPCODE.ping:
        case OPCODE.pong:
          continue; // control frames may come first; a pass-through broker sees them replayed
        case OPCODE.close:
          return { kind: 'reject', error: new ClientClosedError(this.#payloadLength) };
        case OPCODE.text:
          return closeWith('ws_text_frame', CLOSE.unsupportedData, 'text frame: MQTT travels in binary frames only');
        case OPCODE.binary:
          if (this.#inMessage) return closeWith('ws_protocol_error', CLOSE.protocolError, 'new message before the previous one ended');
          break;
        case OPCODE.continuation:
          if (!this.#inMessage) return closeWith('ws_protocol_error', CLOSE.protocolError, 'continuation frame without a message');
          break;
        default:
          return closeWith('ws_protocol_error', CLOSE.protocolError, `unknown opcode 0x${frame.opcode.toString(16)}`);
      }
      this.#inMessage = !frame.fin;
      if (frame.payloadLength > 0) {
        this.#payloads.push(unmaskedPayload(view, frame));
        this.#payloadLength += frame.payloadLength;
      }
      if (this.#packet === undefined) {
        if (this.#payloadLength > this.#maxBytes) return { kind: 'reject', error: withClose(new SniffTooLargeError(this.#payloadLength, this.#maxBytes), CLOSE.tooBig, 'first message too large') };
        if (this.#payloads.length > 1) this.#payloads = [Buffer.concat(this.#payloads, this.#payloadLength)];
        const mqtt = this.#payloads[0];
        if (mqtt === undefined) continue;
        const sniffed = inspectConnect(mqtt, this.#maxBytes, this.#strict);
        if (sniffed.kind === 'need-more') continue;
        if (sniffed.kind === 'reject') return { kind: 'reject', error: withClose(sniffed.error, CLOSE.protocolError, 'first MQTT packet is not a valid CONNECT') };
        this.#packet = sniffed.packet;
      }
      if (this.#inMessage) continue;
      const mqtt = this.#payloads.length === 1 ? this.#payloads[0]! : Buffer.concat(this.#payloads, this.#payloadLength);
      return {
        kind: 'done',
        opening: {
          head,
          upgrade: this.#upgrade!,
          packet: this.#packet,
          mqtt,
          request: view.subarray(0, head.length),
          frames: view.subarray(head.length, this.#at),
          rest: view.subarray(this.#at),
        },
      };
    }
  }
}

function closeWith(reason: string, code: number, message: string): OpeningResult {
  return { kind: 'reject', error: new WebSocketRejectError(reason, message, closeFrame(code, message.slice(0, 100))) };
}

/** The sniff's own errors (not a CONNECT, too large) told to a WebSocket client with a Close frame. */
function withClose(error: ConnectionError, code: number, said: string): ConnectionError {
  return new WebSocketRejectError(error.reason, error.message, closeFrame(code, said));
}
