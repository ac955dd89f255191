/** WebSocket opcodes (RFC 6455 5.2). */
export const OPCODE = { continuation: 0x0, text: 0x1, binary: 0x2, close: 0x8, ping: 0x9, pong: 0xa } as const;

/** Close codes Tether sends (RFC 6455 7.4.1). */
export const CLOSE = { normal: 1000, protocolError: 1002, unsupportedData: 1003, tooBig: 1009, tryAgainLater: 1013 } as const;

/** One frame's header as read from a client, and where its payload lies in the buffer. */
export interface FrameHeader {
  readonly fin: boolean;
  readonly opcode: number;
  readonly masked: boolean;
  /** Offset of the 4-byte masking key (only when masked). */
  readonly maskAt: number;
  readonly payloadAt: number;
  readonly payloadLength: number;
  /** Offset just past the frame. */
  readonly end: number;
}

export type FrameResult =
  | { readonly kind: 'need-more'; readonly atLeast: number }
  | { readonly kind: 'frame'; readonly frame: FrameHeader }
  | { readonly kind: 'too-large'; readonly declared: number }
  | { readonly kind: 'malformed'; readonly detail: string };

/**
 * Reads the frame that starts at `at` in `view` (RFC 6455 5.2). Pure: the bytes stay as they are,
 * so a pass-through replays them unchanged. A frame whose payload exceeds `maxPayload` is refused
 * from its header, before its payload is buffered.
 */
export function readFrame(view: Buffer, at: number, maxPayload: number): FrameResult {
  if (view.length - at < 2) return { kind: 'need-more', atLeast: at + 2 };
  const b0 = view[at]!;
  const b1 = view[at + 1]!;
  if ((b0 & 0x70) !== 0) return { kind: 'malformed', detail: 'reserved bits set (no extension was agreed)' };
  const opcode = b0 & 0x0f;
  const fin = (b0 & 0x80) !== 0;
  const masked = (b1 & 0x80) !== 0;
  let length = b1 & 0x7f;
  let offset = at + 2;
  if (length === 126) {
    if (view.length < offset + 2) return { kind: 'need-more', atLeast: offset + 2 };
    length = view.readUInt16BE(offset);
    offset += 2;
  } else if (length === 127) {
    if (view.length < offset + 8) return { kind: 'need-more', atLeast: offset + 8 };
    const high = view.readUInt32BE(offset);
    length = high > 0x1fffff ? Number.MAX_SAFE_INTEGER : high * 2 ** 32 + view.readUInt32BE(offset + 4);
    offset += 8;
  }
  if (opcode >= 0x8 && (!fin || length > 125)) return { kind: 'malformed', detail: `control frame 0x${opcode.toString(16)} fragmented or longer than 125 bytes` };
  if (length > maxPayload) return { kind: 'too-large', declared: length };
  const maskAt = offset;
  if (masked) offset += 4;
  const end = offset + length;
  if (view.length < end) return { kind: 'need-more', atLeast: end };
  return { kind: 'frame', frame: { fin, opcode, masked, maskAt, payloadAt: offset, payloadLength: length, end } };
}

/** Copies a masked frame's payload, unmasked (RFC 6455 5.3); the frame itself is not changed. */
export function unmaskedPayload(view: Buffer, frame: FrameHeader): Buffer {
  const payload = Buffer.allocUnsafe(frame.payloadLength);
  const m = frame.maskAt;
  for (let i = 0; i < frame.payloadLength; i++) payload[i] = view[frame.payloadAt + i]! ^ view[m + (i & 3)]!;
  return payload;
}

/** A server frame (never masked) with the whole of `payload`. */
export function serverFrame(opcode: number, payload: Buffer): Buffer {
  const length = payload.length;
  const headerLength = length < 126 ? 2 : length < 0x10000 ? 4 : 10;
  const frame = Buffer.allocUnsafe(headerLength + length);
  frame[0] = 0x80 | opcode;
  if (length < 126) {
    frame[1] = length;
  } else if (length < 0x10000) {
    frame[1] = 126;
    frame.writeUInt16BE(length, 2);
  } else {
    frame[1] = 127;
    frame.writeUInt32BE(Math.floor(length / 2 ** 32), 2);
    frame.writeUInt32BE(length >>> 0, 6);
  }
  payload.copy(frame, headerLength);
  return frame;
}

/** A Close frame with `code` and a short reason (at most 123 bytes of it are sent). */
export function closeFrame(code: number, reason = ''): Buffer {
  const text = Buffer.from(reason, 'utf8').subarray(0, 123);
  const payload = Buffer.allocUnsafe(2 + text.length);
  payload.writeUInt16BE(code, 0);
  text.copy(payload, 2);
  return serverFrame(OPCODE.close, payload);
}
