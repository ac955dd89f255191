import { randomBytes } from 'node:crypto';

/**
 * The client side of MQTT over WebSocket for the load generator, kept as small as the raw MQTT
 * path: the Upgrade request, then each MQTT write as one masked binary frame, and the server's
 * frames (never masked) unwrapped into the MQTT byte stream. Pings are answered; anything else
 * that is not a data frame ends the connection.
 */
export class WsClientCodec {
  /** True once the server's 101 has been read. */
  upgraded = false;
  #pending: Buffer | undefined;
  readonly #onPayload: (payload: Buffer) => void;
  readonly #write: (bytes: Buffer) => void;

  constructor(onPayload: (payload: Buffer) => void, write: (bytes: Buffer) => void) {
    this.#onPayload = onPayload;
    this.#write = write;
  }

  static request(host: string, port: number, path: string): Buffer {
    return Buffer.from(
      `GET ${path} HTTP/1.1\r\nHost: ${host}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n`,
      'latin1',
    );
  }

  /** One masked binary frame carrying `payload` (a fresh mask per frame, as RFC 6455 asks). */
  static frame(payload: Buffer, opcode = 0x2): Buffer {
    const length = payload.length;
    const headerLength = length < 126 ? 2 : length < 0x10000 ? 4 : 10;
    const frame = Buffer.allocUnsafe(headerLength + 4 + length);
    frame[0] = 0x80 | opcode;
    if (length < 126) frame[1] = 0x80 | length;
    else if (length < 0x10000) {
      frame[1] = 0x80 | 126;
      frame.writeUInt16BE(length, 2);
    } else {
      frame[1] = 0x80 | 127;
      frame.writeUInt32BE(0, 2);
      frame.writeUInt32BE(length, 6);
    }
    randomBytes(4).copy(frame, headerLength);
    for (let i = 0; i < length; i++) frame[headerLength + 4 + i] = payload[i]! ^ frame[headerLength + (i & 3)]!;
    return frame;
  }

  /** Bytes from the server; throws on a refused upgrade or a frame it does not expect. */
  push(chunk: Buffer): void {
    let buf = this.#pending ? Buffer.concat([this.#pending, chunk]) : chunk;
    this.#pending = undefined;
    if (!this.upgraded) {
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) {
        this.#pending = Buffer.from(buf);
        return;
      }
      const status = buf.toString('latin1', 0, Math.min(end, 64)).split('\r\n', 1)[0]!;
      if (!/^HTTP\/1\.1 101 /.test(status)) throw new Error(`WebSocket upgrade refused: ${status}`);
      this.upgraded = true;
      buf = buf.subarray(end + 4);
    }
    let offset = 0;
    while (buf.length - offset >= 2) {
      const opcode = buf[offset]! & 0x0f;
      let length = buf[offset + 1]! & 0x7f;
      let at = offset + 2;
      if (length === 126) {
        if (buf.length < at + 2) break;
        length = buf.readUInt16BE(at);
        at += 2;
      } else if (length === 127) {
        if (buf.length < at + 8) break;
        length = buf.readUInt32BE(at + 4);
        at += 8;
      }
      if (buf.length < at + length) break;
      const payload = buf.subarray(at, at + length);
      offset = at + length;
      if (opcode === 0x2 || opcode === 0x0) this.#onPayload(payload);
      else if (opcode === 0x9) this.#write(WsClientCodec.frame(payload, 0xa));
      else if (opcode !== 0xa) throw new Error(`WebSocket frame 0x${opcode.toString(16)} from the server`);
    }
    if (offset < buf.length) this.#pending = Buffer.from(buf.subarray(offset));
  }
}
