import { randomBytes } from 'node:crypto';

/** An HTTP/1.1 WebSocket Upgrade request as a browser sends it; `headers` add or replace lines. */
export function upgradeRequest(options: { path?: string; protocol?: string | undefined; headers?: Record<string, string>; key?: string } = {}): Buffer {
  const headers: Record<string, string> = {
    Host: '127.0.0.1',
    Upgrade: 'websocket',
    Connection: 'Upgrade',
    'Sec-WebSocket-Key': options.key ?? randomBytes(16).toString('base64'),
    'Sec-WebSocket-Version': '13',
    ...(options.protocol !== undefined ? { 'Sec-WebSocket-Protocol': options.protocol } : {}),
    ...options.headers,
  };
  const lines = [`GET ${options.path ?? '/mqtt'} HTTP/1.1`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
  return Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1');
}

/** A client frame: masked unless `masked` is false, FIN unless `fin` is false. */
export function clientFrame(opcode: number, payload: Buffer, options: { masked?: boolean; fin?: boolean } = {}): Buffer {
  const masked = options.masked ?? true;
  const fin = options.fin ?? true;
  const length = payload.length;
  const header = length < 126 ? Buffer.from([0, length]) : length < 0x10000 ? Buffer.from([0, 126, length >> 8, length & 0xff]) : Buffer.concat([Buffer.from([0, 127]), bigLength(length)]);
  header[0] = (fin ? 0x80 : 0) | opcode;
  if (!masked) return Buffer.concat([header, payload]);
  header[1]! |= 0x80;
  const mask = randomBytes(4);
  const body = Buffer.from(payload);
  for (let i = 0; i < body.length; i++) body[i]! ^= mask[i & 3]!;
  return Buffer.concat([header, mask, body]);
}

function bigLength(n: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt32BE(Math.floor(n / 2 ** 32), 0);
  b.writeUInt32BE(n >>> 0, 4);
  return b;
}

/** What a server sent back: its HTTP status line and, after a 101, its frames (server frames are not masked). */
export interface ServerReply {
  readonly status: number;
  readonly head: string;
  readonly body: string;
  readonly frames: { opcode: number; payload: Buffer }[];
}

export function parseReply(bytes: Buffer): ServerReply {
  const end = bytes.indexOf('\r\n\r\n');
  if (end < 0) return { status: 0, head: bytes.toString('latin1'), body: '', frames: [] };
  const head = bytes.toString('latin1', 0, end);
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0);
  const rest = bytes.subarray(end + 4);
  if (status !== 101) return { status, head, body: rest.toString('utf8'), frames: [] };
  const frames: { opcode: number; payload: Buffer }[] = [];
  let at = 0;
  while (at + 2 <= rest.length) {
    const opcode = rest[at]! & 0x0f;
    let length = rest[at + 1]! & 0x7f;
    let offset = at + 2;
    if (length === 126) {
      length = rest.readUInt16BE(offset);
      offset += 2;
    } else if (length === 127) {
      length = rest.readUInt32BE(offset) * 2 ** 32 + rest.readUInt32BE(offset + 4);
      offset += 8;
    }
    if (offset + length > rest.length) break;
    frames.push({ opcode, payload: rest.subarray(offset, offset + length) });
    at = offset + length;
  }
  return { status, head, body: '', frames };
}

/** The close code of a Close frame's payload. */
export function closeCode(payload: Buffer): number {
  return payload.length >= 2 ? payload.readUInt16BE(0) : 1005;
}
