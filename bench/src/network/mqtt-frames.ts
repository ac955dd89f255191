/**
 * A minimal MQTT frame splitter for the load generator and the fast responder: it cuts a byte
 * stream into packets (fixed header + remaining length) and hands each one over without decoding
 * it. Both sides then read only the few bytes they need (CONNACK flags, a packet id), which keeps
 * them far cheaper per packet than the balancer they measure.
 */

/** MQTT control packet types (the high nibble of the first byte). */
export const PacketType = {
  CONNECT: 1,
  CONNACK: 2,
  PUBLISH: 3,
  PUBACK: 4,
  PUBREC: 5,
  PUBREL: 6,
  PUBCOMP: 7,
  SUBSCRIBE: 8,
  SUBACK: 9,
  PINGREQ: 12,
  PINGRESP: 13,
  DISCONNECT: 14,
} as const;

/**
 * Called once per complete packet: `type` and `flags` are the two nibbles of the first byte,
 * `body` the variable header and payload (a view into the received bytes, valid during the call).
 */
export type FrameHandler = (type: number, flags: number, body: Buffer) => void;

export class FrameError extends Error {}

export class FrameReader {
  readonly #onFrame: FrameHandler;
  /** Bytes of an incomplete packet, kept until the rest arrives. */
  #pending: Buffer | undefined;

  constructor(onFrame: FrameHandler) {
    this.#onFrame = onFrame;
  }

  /** Feeds received bytes; throws FrameError on a malformed remaining length. */
  push(chunk: Buffer): void {
    const buf = this.#pending ? Buffer.concat([this.#pending, chunk]) : chunk;
    this.#pending = undefined;
    let offset = 0;
    while (offset < buf.length) {
      const header = remainingLength(buf, offset + 1);
      if (header === undefined) break;
      const start = offset + 1 + header.bytes;
      const end = start + header.length;
      if (end > buf.length) break;
      const first = buf[offset]!;
      this.#onFrame(first >> 4, first & 0x0f, buf.subarray(start, end));
      offset = end;
    }
    // Copied so that a large receive buffer is not kept alive by a few trailing bytes.
    if (offset < buf.length) this.#pending = Buffer.from(buf.subarray(offset));
  }
}

/** The remaining length at `at` and how many bytes encode it; undefined while incomplete. */
function remainingLength(buf: Buffer, at: number): { length: number; bytes: number } | undefined {
  let length = 0;
  let multiplier = 1;
  for (let i = 0; i < 4; i++) {
    if (at + i >= buf.length) return undefined;
    const byte = buf[at + i]!;
    length += (byte & 0x7f) * multiplier;
    if ((byte & 0x80) === 0) return { length, bytes: i + 1 };
    multiplier *= 128;
  }
  throw new FrameError('malformed remaining length (more than 4 bytes)');
}
