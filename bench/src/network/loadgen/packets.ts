import mqttPacket, { type Packet } from 'mqtt-packet';

/**
 * Packets of the load generator, encoded with mqtt-packet once, before a measured phase starts:
 * during the phase the generator only copies bytes to sockets. MQTT 3.1.1 throughout.
 */

const encode = (packet: Packet): Buffer => mqttPacket.generate(packet, { protocolVersion: 4 });

export const PINGREQ = encode({ cmd: 'pingreq' });
export const DISCONNECT = encode({ cmd: 'disconnect' });

/** Digits of the client number at the end of every client id. */
const ID_DIGITS = 6;
export const MAX_CLIENTS = 10 ** ID_DIGITS;

/**
 * CONNECT packets for clients `prefix000000` up to `count - 1`. With no will, user name or
 * password the client id is the last field, so one encoded packet is the template and each copy
 * gets its own digits at the end.
 */
export function connectPackets(prefix: string, count: number, clean: boolean, keepalive: number): Buffer[] {
  if (count > MAX_CLIENTS) throw new Error(`at most ${MAX_CLIENTS} client ids per phase`);
  const template = encode({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clientId: `${prefix}${'0'.repeat(ID_DIGITS)}`, clean, keepalive });
  const packets: Buffer[] = new Array<Buffer>(count);
  for (let i = 0; i < count; i++) {
    const packet = Buffer.from(template);
    packet.write(String(i).padStart(ID_DIGITS, '0'), packet.length - ID_DIGITS, 'latin1');
    packets[i] = packet;
  }
  return packets;
}

/** SUBSCRIBE to one topic at QoS 1 (packet id 1). */
export function subscribePacket(topic: string): Buffer {
  return encode({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos: 1 }] });
}

/** `count` QoS 0 PUBLISH packets back to back: one write carries them all. */
export function qos0Batch(topic: string, payloadBytes: number, count: number): Buffer {
  const one = encode({ cmd: 'publish', topic, payload: Buffer.alloc(payloadBytes, 0x61), qos: 0, retain: false, dup: false });
  return Buffer.concat(new Array<Buffer>(count).fill(one));
}

/** QoS 1 PUBLISH packets with packet ids 1..count, used in turn (fewer in flight than ids, so none is reused early). */
export function qos1Packets(topic: string, payloadBytes: number, count: number): Buffer[] {
  const payload = Buffer.alloc(payloadBytes, 0x61);
  return Array.from({ length: count }, (_, i) => encode({ cmd: 'publish', topic, payload, qos: 1, messageId: i + 1, retain: false, dup: false }));
}
