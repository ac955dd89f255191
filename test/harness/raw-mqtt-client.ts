import { connect, type Socket } from 'node:net';
import mqttPacket, { type IConnectPacket, type Packet } from 'mqtt-packet';
import { waitFor, within } from './poll.ts';

export type ProtocolVersion = 3 | 4 | 5;

/** How a raw client's connection ended, as seen from the client. */
export interface CloseInfo {
  /** The peer closed cleanly (FIN reached us) before the socket closed. */
  readonly gotEnd: boolean;
  /** The socket error, if it closed with one (ECONNRESET for a reset). */
  readonly error: NodeJS.ErrnoException | undefined;
}

export interface RawClientOptions {
  /** Parse what arrives as MQTT of this version (default 4); `false` for a non-MQTT peer. */
  readonly parse?: ProtocolVersion | false;
  /** Keep the socket writable after the peer's FIN, to test half-close. */
  readonly allowHalfOpen?: boolean;
}

/**
 * A client on a bare net.Socket: it writes exactly the bytes a test gives it, in exactly the
 * writes the test chooses (one byte at a time, odd split points, several packets coalesced),
 * which mqtt.js cannot do. Everything received is kept, and parsed as MQTT when asked.
 */
export class RawClient {
  readonly socket: Socket;
  /** MQTT packets received, in order (when parsing). */
  readonly packets: Packet[] = [];
  readonly parseErrors: Error[] = [];
  readonly closed: Promise<CloseInfo>;
  readonly #chunks: Buffer[] = [];
  gotEnd = false;
  isClosed = false;

  private constructor(socket: Socket, parse: ProtocolVersion | false) {
    this.socket = socket;
    if (parse !== false) {
      const parser = mqttPacket.parser({ protocolVersion: parse });
      parser.on('packet', (p: Packet) => this.packets.push(p));
      parser.on('error', (e: Error) => this.parseErrors.push(e));
      socket.on('data', (chunk: Buffer) => parser.parse(chunk));
    }
    socket.on('data', (chunk: Buffer) => this.#chunks.push(chunk));
    let error: NodeJS.ErrnoException | undefined;
    socket.on('error', (err) => (error ??= err));
    socket.once('end', () => (this.gotEnd = true));
    this.closed = new Promise((resolve) =>
      socket.once('close', () => {
        this.isClosed = true;
        resolve({ gotEnd: this.gotEnd, error });
      }),
    );
  }

  /** Connects to 127.0.0.1:`port`; resolves once the TCP connection is up. */
  static async connect(port: number, options: RawClientOptions = {}): Promise<RawClient> {
    const socket = connect({ host: '127.0.0.1', port, allowHalfOpen: options.allowHalfOpen ?? false, noDelay: true });
    const client = new RawClient(socket, options.parse ?? 4);
    await within(
      new Promise<void>((resolve, reject) => {
        socket.once('connect', () => resolve());
        socket.once('error', reject);
      }),
      `TCP connection to 127.0.0.1:${port}`,
    );
    return client;
  }

  /** One write; resolves when Node has handed it to the kernel (its callback). */
  write(bytes: Buffer | string): Promise<void> {
    return new Promise((resolve, reject) => this.socket.write(bytes, (err) => (err ? reject(err) : resolve())));
  }

  /** Writes `bytes` as consecutive slices cut at `cuts` (offsets), one awaited write per slice. */
  async writeSplit(bytes: Buffer, cuts: readonly number[]): Promise<void> {
    let from = 0;
    for (const to of [...cuts, bytes.length]) {
      if (to <= from) continue;
      await this.write(bytes.subarray(from, to));
      from = to;
    }
  }

  /** Every byte received so far. */
  received(): Buffer {
    return Buffer.concat(this.#chunks);
  }

  /** Waits (bounded) for the first received packet of this type, counting from index `from`. */
  waitForPacket<C extends Packet['cmd']>(cmd: C, from = 0): Promise<Extract<Packet, { cmd: C }>> {
    return waitFor(() => this.packets.slice(from).find((p): p is Extract<Packet, { cmd: C }> => p.cmd === cmd), {
      what: () => `a ${cmd.toUpperCase()} packet (received so far: ${this.packets.map((p) => p.cmd).join(', ') || 'none'})`,
    });
  }

  /** Waits (bounded) until the connection is closed and says how. */
  waitClosed(what = 'the client connection to close'): Promise<CloseInfo> {
    return within(this.closed, what);
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** A CONNECT packet as bytes. Protocol level 3 uses the MQTT 3.1 name MQIsdp, as the spec wants. */
export function connectBytes(clientId: string, protocolVersion: ProtocolVersion = 4, extra: Partial<IConnectPacket> = {}): Buffer {
  const packet: IConnectPacket = {
    cmd: 'connect',
    protocolId: protocolVersion === 3 ? 'MQIsdp' : 'MQTT',
    protocolVersion,
    clientId,
    clean: true,
    keepalive: 60,
    ...extra,
  };
  return mqttPacket.generate(packet, { protocolVersion });
}

/** Any other packet as bytes, for the given protocol version. */
export function packetBytes(packet: Packet, protocolVersion: ProtocolVersion = 4): Buffer {
  return mqttPacket.generate(packet, { protocolVersion });
}
