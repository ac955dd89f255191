import { connect, type Socket } from 'node:net';
import mqttPacket, { type Packet } from 'mqtt-packet';
import { connackReason } from '../mqtt/connack-codes.ts';
import type { Backend } from '../plugin.ts';

export type ProbeResult = { readonly ok: true } | { readonly ok: false; readonly reason: string };

export interface ProbeSettings {
  readonly type: 'tcp' | 'mqtt';
  readonly timeoutMs: number;
  readonly clientId: string;
  readonly username: string;
  readonly password: string;
}

/** PROXY headers with the LOCAL command: a backend that requires PROXY accepts the check as ours (HAProxy check-send-proxy). */
const LOCAL_V2 = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a, 0x20, 0x00, 0x00, 0x00]);
const LOCAL_V1 = Buffer.from('PROXY UNKNOWN\r\n', 'latin1');
const DISCONNECT = mqttPacket.generate({ cmd: 'disconnect' });

/**
 * One health check: `tcp` passes when the connect succeeds; `mqtt` sends a CONNECT and passes on a
 * CONNACK with return code 0, then says DISCONNECT. Always settles within `timeoutMs`.
 */
export function probe(backend: Backend, settings: ProbeSettings): Promise<ProbeResult> {
  return new Promise((resolve) => {
    let settled = false;
    const socket: Socket = connect({ host: backend.host, port: backend.port });
    const finish = (result: ProbeResult, goodbye?: Buffer): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (goodbye && !socket.destroyed) socket.end(goodbye, () => socket.destroy());
      else socket.destroy();
      resolve(result);
    };
    const timer = setTimeout(() => finish({ ok: false, reason: `${settings.type} check timed out after ${settings.timeoutMs} ms` }), settings.timeoutMs);
    socket.once('error', (err: NodeJS.ErrnoException) => finish({ ok: false, reason: `connect failed: ${err.code ?? err.message}` }));
    socket.once('close', () => finish({ ok: false, reason: 'connection closed before the check finished' }));
    socket.once('connect', () => {
      const preamble = backend.sendProxy === 'v2' ? LOCAL_V2 : backend.sendProxy === 'v1' ? LOCAL_V1 : undefined;
      if (settings.type === 'tcp') return finish({ ok: true }, preamble ?? Buffer.alloc(0));
      const parser = mqttPacket.parser();
      parser.on('packet', (packet: Packet) => {
        if (packet.cmd !== 'connack') return finish({ ok: false, reason: `expected CONNACK, got ${packet.cmd.toUpperCase()}` });
        const code = packet.returnCode ?? packet.reasonCode ?? 0;
        if (code === 0) finish({ ok: true }, DISCONNECT);
        else finish({ ok: false, reason: `CONNACK refused: ${code} (${connackReason(code, 4).replaceAll('_', ' ')})` });
      });
      parser.on('error', (err: Error) => finish({ ok: false, reason: `bad reply: ${err.message}` }));
      socket.on('data', (chunk: Buffer) => parser.parse(chunk));
      const connectPacket = mqttPacket.generate({
        cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, keepalive: 0, clientId: settings.clientId,
        ...(settings.username ? { username: settings.username } : {}),
        ...(settings.password ? { password: Buffer.from(settings.password) } : {}),
      });
      socket.write(preamble ? Buffer.concat([preamble, connectPacket]) : connectPacket);
    });
  });
}
