/**
 * The fast responder: a minimal MQTT "broker" on raw sockets that answers just enough for the
 * benchmark (CONNACK, PINGRESP, SUBACK, PUBACK/PUBREC/PUBCOMP, close on DISCONNECT) and routes
 * nothing, so that the balancer rather than the broker is what a run measures.
 *
 * Run as its own process: `node responder.ts COUNT` listens on COUNT loopback ports (one per
 * backend), prints `{"ports":[...]}` on one stdout line once all listen, and exits on SIGTERM.
 *
 * Session present: all ports share one table of where each persistent client id last connected,
 * so CONNACK's session-present flag is 1 exactly when a clean-session-0 client comes back to the
 * same backend it used last time. That is stickiness as a client sees it, measured end to end.
 */
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { exitWithParent } from './exit-with-parent.ts';
import { FrameReader, PacketType } from './mqtt-frames.ts';

const PINGRESP = Buffer.from([0xd0, 0x00]);

/** Client id -> port of the backend that holds its session. */
const lastBackend = new Map<string, number>();

function serve(socket: Socket, port: number): void {
  socket.setNoDelay(true);
  let version = 4;
  // Replies to one received chunk go out in one write: one syscall per chunk, not per packet.
  let replies: Buffer[] = [];
  let closeAfter = false;
  const reader = new FrameReader((type, flags, body) => {
    switch (type) {
      case PacketType.CONNECT: {
        const connect = parseConnect(body);
        version = connect.version;
        let present = false;
        if (connect.clean) lastBackend.delete(connect.clientId);
        else {
          present = lastBackend.get(connect.clientId) === port;
          lastBackend.set(connect.clientId, port);
        }
        // MQTT 5 adds a property length (0) after the return code.
        replies.push(version === 5 ? Buffer.from([0x20, 0x03, present ? 1 : 0, 0x00, 0x00]) : Buffer.from([0x20, 0x02, present ? 1 : 0, 0x00]));
        break;
      }
      case PacketType.PINGREQ:
        replies.push(PINGRESP);
        break;
      case PacketType.PUBLISH: {
        const qos = (flags >> 1) & 0x03;
        if (qos === 0) break;
        const topicLength = body.readUInt16BE(0);
        const id = body.readUInt16BE(2 + topicLength);
        replies.push(Buffer.from([qos === 1 ? 0x40 : 0x50, 0x02, id >> 8, id & 0xff]));
        break;
      }
      case PacketType.PUBREL:
        replies.push(Buffer.from([0x70, 0x02, body[0]!, body[1]!]));
        break;
      case PacketType.SUBSCRIBE:
        replies.push(suback(body, version));
        break;
      case PacketType.DISCONNECT:
        closeAfter = true;
        break;
      default:
        break;
    }
  });
  socket.on('data', (chunk: Buffer) => {
    try {
      reader.push(chunk);
    } catch {
      socket.destroy();
      return;
    }
    if (replies.length > 0) {
      socket.write(replies.length === 1 ? replies[0]! : Buffer.concat(replies));
      replies = [];
    }
    // The server closes the connection on DISCONNECT [MQTT-3.14.4-1], so the FIN (and the
    // TIME_WAIT that follows) is on the server side, not on the load generator's ports.
    if (closeAfter) socket.end();
  });
  socket.on('error', () => socket.destroy());
}

interface ConnectInfo {
  readonly version: number;
  readonly clean: boolean;
  readonly clientId: string;
}

/** Protocol level, clean-session flag and client id of a CONNECT body. */
function parseConnect(body: Buffer): ConnectInfo {
  const nameLength = body.readUInt16BE(0);
  let at = 2 + nameLength;
  const version = body[at]!;
  const flags = body[at + 1]!;
  at += 4; // level, flags, keepalive
  if (version === 5) at += varint(body, at).bytes + varint(body, at).value;
  const idLength = body.readUInt16BE(at);
  return { version, clean: (flags & 0x02) !== 0, clientId: body.toString('utf8', at + 2, at + 2 + idLength) };
}

/** SUBACK granting every requested QoS (as requested, capped at 2). */
function suback(body: Buffer, version: number): Buffer {
  const granted: number[] = [];
  let at = 2;
  if (version === 5) at += varint(body, at).bytes + varint(body, at).value;
  // Bounded by the body: each topic filter is a 2-byte length, the filter and an options byte.
  while (at + 2 <= body.length) {
    at += 2 + body.readUInt16BE(at);
    granted.push(Math.min(2, (body[at] ?? 0) & 0x03));
    at += 1;
  }
  const props = version === 5 ? [0] : [];
  const length = 2 + props.length + granted.length;
  return Buffer.from([0x90, length, body[0]!, body[1]!, ...props, ...granted]);
}

function varint(buf: Buffer, at: number): { value: number; bytes: number } {
  let value = 0;
  let multiplier = 1;
  for (let i = 0; i < 4; i++) {
    const byte = buf[at + i] ?? 0;
    value += (byte & 0x7f) * multiplier;
    if ((byte & 0x80) === 0) return { value, bytes: i + 1 };
    multiplier *= 128;
  }
  return { value, bytes: 4 };
}

async function main(): Promise<void> {
  const count = Number(process.argv[2] ?? '2');
  if (!Number.isInteger(count) || count < 1 || count > 64) throw new Error(`responder: backend count must be 1..64, got ${process.argv[2]}`);
  const servers: Server[] = [];
  for (let i = 0; i < count; i++) {
    const server = createServer({ noDelay: true });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: '127.0.0.1', port: 0, backlog: 4096 }, () => resolve());
    });
    const { port } = server.address() as AddressInfo;
    server.on('connection', (socket: Socket) => serve(socket, port));
    servers.push(server);
  }
  exitWithParent();
  process.stdout.write(`${JSON.stringify({ ports: servers.map((s) => (s.address() as AddressInfo).port) })}\n`);
}

await main();
