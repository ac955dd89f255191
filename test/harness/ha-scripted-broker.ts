import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import mqttPacket, { type Packet } from 'mqtt-packet';
import { waitFor } from './poll.ts';

/**
 * What the scripted broker does with the CONNECT of its n-th connection (n from 0):
 * answer a CONNACK with this return code, send some other packet, stay silent, or hang up.
 */
export type Reply = { readonly connack: number } | { readonly packet: Packet } | 'silent' | 'close';

/** One TCP connection the scripted broker accepted, as it saw it. */
export interface SeenConnection {
  readonly index: number;
  /** Every byte received, PROXY header included. */
  raw: Buffer;
  /** The PROXY header in front of the MQTT bytes, if any (v1 line or v2 block, exactly). */
  header: Buffer | undefined;
  /** MQTT packets parsed after the header. */
  readonly packets: Packet[];
  /** The peer closed (or the socket otherwise ended). */
  closed: boolean;
}

const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);

/**
 * A tiny MQTT server on loopback port 0 whose answer to each CONNECT follows a script, for health
 * check tests that need a broker to fail in a precise way (refuse with code N, never answer, answer
 * something else) on a precise check, which a real broker cannot be told to do. It records every
 * connection byte for byte, splits off a PROXY header (v1 or v2) if one comes first, and parses the
 * rest as MQTT 3.1.1. It can stop listening and listen again on the same port.
 */
export class ScriptedBroker {
  readonly connections: SeenConnection[] = [];
  #script: (index: number) => Reply;
  #server: Server | undefined;
  readonly #sockets = new Set<Socket>();
  #port = 0;

  private constructor(script: (index: number) => Reply) {
    this.#script = script;
  }

  static async start(script: (index: number) => Reply = () => ({ connack: 0 })): Promise<ScriptedBroker> {
    const broker = new ScriptedBroker(script);
    await broker.listen();
    return broker;
  }

  get port(): number {
    return this.#port;
  }

  /** Replaces the script; it applies to connections accepted from now on. */
  setScript(script: (index: number) => Reply): void {
    this.#script = script;
  }

  /** Starts listening: on a kernel-chosen port the first time, then on the same port again. */
  async listen(): Promise<void> {
    if (this.#server) return;
    const server = createServer((socket) => this.#accept(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: '127.0.0.1', port: this.#port }, () => resolve());
    });
    this.#port = (server.address() as AddressInfo).port;
    this.#server = server;
  }

  /** Stops accepting; connections are refused from now on, live ones are kept. */
  stopListening(): void {
    this.#server?.close();
    this.#server = undefined;
  }

  /** Waits (bounded) until `n` connections have been accepted and returns the n-th. */
  waitForConnections(n: number, timeoutMs?: number): Promise<SeenConnection> {
    return waitFor(() => this.connections[n - 1], { what: () => `connection #${n} to the scripted broker (seen ${this.connections.length})`, ...(timeoutMs ? { timeoutMs } : {}) });
  }

  async close(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    for (const s of this.#sockets) s.destroy();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  #accept(socket: Socket): void {
    this.#sockets.add(socket);
    const seen: SeenConnection = { index: this.connections.length, raw: Buffer.alloc(0), header: undefined, packets: [], closed: false };
    this.connections.push(seen);
    const reply = this.#script(seen.index);
    const parser = mqttPacket.parser({ protocolVersion: 4 });
    parser.on('packet', (packet: Packet) => {
      seen.packets.push(packet);
      if (packet.cmd !== 'connect') return;
      if (reply === 'close') socket.destroy();
      else if (reply === 'silent') return;
      else if ('connack' in reply) socket.write(mqttPacket.generate({ cmd: 'connack', returnCode: reply.connack, sessionPresent: false }));
      else socket.write(mqttPacket.generate(reply.packet));
    });
    // Errors only end the connection; the test looks at what was recorded.
    parser.on('error', () => socket.destroy());
    socket.on('error', () => undefined);
    let mqttStarted = false;
    socket.on('data', (chunk: Buffer) => {
      seen.raw = Buffer.concat([seen.raw, chunk]);
      if (mqttStarted) return void parser.parse(chunk);
      const headerLength = proxyHeaderLength(seen.raw);
      if (headerLength === 'more') return;
      mqttStarted = true;
      seen.header = headerLength > 0 ? seen.raw.subarray(0, headerLength) : undefined;
      parser.parse(seen.raw.subarray(headerLength));
    });
    socket.once('close', () => {
      seen.closed = true;
      this.#sockets.delete(socket);
    });
  }
}

/** Bytes of PROXY header at the start of `buf`: 0 if there is none, 'more' if it is not complete yet. */
function proxyHeaderLength(buf: Buffer): number | 'more' {
  const v2 = buf.subarray(0, V2_SIGNATURE.length);
  if (V2_SIGNATURE.subarray(0, v2.length).equals(v2)) {
    if (buf.length < 16) return 'more';
    const total = 16 + buf.readUInt16BE(14);
    return buf.length < total ? 'more' : total;
  }
  const v1 = buf.subarray(0, 6);
  if (Buffer.from('PROXY ').subarray(0, v1.length).equals(v1)) {
    const end = buf.indexOf('\r\n');
    return end < 0 ? 'more' : end + 2;
  }
  return 0;
}
