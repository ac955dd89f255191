import { packetName } from './packet-types.ts';

/** What the bytes seen so far say: wait for more, a CONNACK was read, or the broker's first packet is not one. */
export type ConnackVerdict = 'need-more' | 'connack' | 'invalid';

/** What the splice shows the broker's first chunks to: a ConnackReader, or one that unwraps them first (WebSocket pass-through). */
export interface ConnackWatch {
  readonly verdict: ConnackVerdict;
  /** The return code (MQTT 3.1.x) or reason code (MQTT 5); -1 until read. */
  readonly code: number;
  readonly sessionPresent: boolean;
  /** Why the first packet is not a CONNACK, once the verdict is `invalid`. */
  readonly error: string | undefined;
  /** Looks at the next chunk from the broker (already forwarded: it must not change it). */
  push(chunk: Uint8Array): ConnackVerdict;
}

const CONNACK = 0x20;
const AUTH = 0xf0;

// Steps of the reader, in the order the bytes come.
const HEADER = 0;
const LENGTH = 1;
const FLAGS = 2;
const CODE = 3;
const SKIP = 4;
const DONE = 5;

/**
 * Reads the broker's answer to a client's CONNECT as it passes on its way to the client, chunk by
 * chunk, and says as soon as the CONNACK's return (or reason) code and session-present flag are
 * known: after its first four bytes, without waiting for the rest of the packet (MQTT 5
 * properties are not read). Under MQTT 5 the AUTH packets of an enhanced authentication that may
 * come first are skipped.
 *
 * Pure and incremental: it never keeps, copies or changes the bytes (the caller forwards every
 * chunk as it is), a CONNACK split anywhere across chunks is read the same, and nothing is
 * allocated per chunk. Once it has said `connack` or `invalid` it says so again for any later
 * chunk without looking at it.
 */
export class ConnackReader implements ConnackWatch {
  readonly #protocolVersion: 3 | 4 | 5;
  #step = HEADER;
  #auth = false;
  #length = 0;
  #multiplier = 1;
  #lengthBytes = 0;
  #skip = 0;
  #verdict: ConnackVerdict = 'need-more';
  /** The return code (MQTT 3.1.x) or reason code (MQTT 5); -1 until read. 0 accepts the client. */
  code = -1;
  sessionPresent = false;
  /** Why the first packet is not a CONNACK, once the verdict is `invalid`. */
  error: string | undefined;

  /** `protocolVersion` is the client's CONNECT's: it decides whether AUTH may come first. */
  constructor(protocolVersion: 3 | 4 | 5) {
    this.#protocolVersion = protocolVersion;
  }

  get verdict(): ConnackVerdict {
    return this.#verdict;
  }

  /** Looks at the next chunk from the broker. */
  push(chunk: Uint8Array): ConnackVerdict {
    for (let i = 0; i < chunk.length && this.#step !== DONE; i++) {
      if (this.#step === SKIP) {
        // The rest of an AUTH packet: jump over it in this chunk as far as it goes.
        const take = Math.min(this.#skip, chunk.length - i);
        this.#skip -= take;
        i += take - 1;
        if (this.#skip === 0) this.#next();
        continue;
      }
      this.#byte(chunk[i]!);
    }
    return this.#verdict;
  }

  #byte(b: number): void {
    switch (this.#step) {
      case HEADER:
        if (b === CONNACK || (b === AUTH && this.#protocolVersion === 5)) {
          this.#auth = b === AUTH;
          this.#step = LENGTH;
          return;
        }
        return this.#invalid(b >> 4 === 2 ? `CONNACK header 0x${hex(b)} has reserved flag bits set` : `the broker's first packet is ${packetName(b)} (header 0x${hex(b)}), expected CONNACK`);
      case LENGTH:
        this.#length += (b & 0x7f) * this.#multiplier;
        this.#multiplier *= 128;
        if (++this.#lengthBytes === 4 && b & 0x80) return this.#invalid('remaining length is longer than 4 bytes');
        if (b & 0x80) return;
        if (this.#auth) {
          this.#skip = this.#length;
          if (this.#skip === 0) this.#next();
          else this.#step = SKIP;
          return;
        }
        if (this.#length < 2) return this.#invalid(`CONNACK remaining length ${this.#length}, expected at least 2`);
        this.#step = FLAGS;
        return;
      case FLAGS:
        if (b > 1) return this.#invalid(`CONNACK flags 0x${hex(b)} have reserved bits set`);
        this.sessionPresent = b === 1;
        this.#step = CODE;
        return;
      case CODE:
        this.code = b;
        this.#step = DONE;
        this.#verdict = 'connack';
        return;
    }
  }

  /** After an AUTH packet: the next packet starts. */
  #next(): void {
    this.#step = HEADER;
    this.#length = 0;
    this.#multiplier = 1;
    this.#lengthBytes = 0;
  }

  #invalid(why: string): void {
    this.error = why;
    this.#step = DONE;
    this.#verdict = 'invalid';
  }
}

function hex(b: number): string {
  return b.toString(16).padStart(2, '0');
}
