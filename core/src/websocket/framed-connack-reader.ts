import { ConnackReader, type ConnackVerdict, type ConnackWatch } from '../mqtt/connack-reader.ts';
import { OPCODE } from './websocket-frames.ts';

// Steps of the frame walk, in the order a frame's bytes come.
const HEAD = 0;
const LENGTH = 1;
const EXTENDED = 2;
const PAYLOAD = 3;

/**
 * The CONNACK check of a pass-through connection: the broker's bytes are WebSocket frames (RFC
 * 6455; a server's are not masked), so the payloads of its data frames are handed to a
 * ConnackReader as they pass, frame by frame and chunk by chunk, never copied or changed. Control
 * frames before the CONNACK (a ping) are skipped; a text frame, a masked frame or a Close before it
 * is the broker's first answer not being a CONNACK. Nothing is allocated per chunk but the views
 * of payload bytes, and only until the verdict.
 */
export class FramedConnackReader implements ConnackWatch {
  readonly #mqtt: ConnackReader;
  #step = HEAD;
  #opcode = 0;
  #left = 0;
  #extended = 0;
  #error: string | undefined;

  constructor(protocolVersion: 3 | 4 | 5) {
    this.#mqtt = new ConnackReader(protocolVersion);
  }

  get verdict(): ConnackVerdict {
    return this.#error === undefined ? this.#mqtt.verdict : 'invalid';
  }

  get code(): number {
    return this.#mqtt.code;
  }

  get sessionPresent(): boolean {
    return this.#mqtt.sessionPresent;
  }

  get error(): string | undefined {
    return this.#error ?? this.#mqtt.error;
  }

  push(chunk: Uint8Array): ConnackVerdict {
    let i = 0;
    while (i < chunk.length && this.verdict === 'need-more') {
      if (this.#step === PAYLOAD) {
        const take = Math.min(this.#left, chunk.length - i);
        if (this.#opcode === OPCODE.binary || this.#opcode === OPCODE.continuation) this.#mqtt.push(chunk.subarray(i, i + take));
        i += take;
        this.#left -= take;
        if (this.#left === 0) this.#step = HEAD;
        continue;
      }
      this.#byte(chunk[i++]!);
    }
    return this.verdict;
  }

  #byte(b: number): void {
    switch (this.#step) {
      case HEAD:
        if ((b & 0x70) !== 0) return this.#invalid('a WebSocket frame from the broker has reserved bits set');
        this.#opcode = b & 0x0f;
        this.#step = LENGTH;
        return;
      case LENGTH:
        if ((b & 0x80) !== 0) return this.#invalid('the broker sent a masked WebSocket frame');
        this.#left = b & 0x7f;
        if (this.#left < 126) return this.#payload();
        this.#extended = this.#left === 126 ? 2 : 8;
        this.#left = 0;
        this.#step = EXTENDED;
        return;
      case EXTENDED:
        this.#left = this.#left * 256 + b;
        if (--this.#extended === 0) this.#payload();
        return;
    }
  }

  /** The frame's header is read: what its payload is decides what happens to it. */
  #payload(): void {
    if (this.#opcode === OPCODE.text) return this.#invalid('the broker\'s first WebSocket message is text, expected a binary CONNACK');
    if (this.#opcode === OPCODE.close) return this.#invalid('the broker closed the WebSocket before its CONNACK');
    this.#step = this.#left === 0 ? HEAD : PAYLOAD;
  }

  #invalid(why: string): void {
    this.#error = why;
  }
}
