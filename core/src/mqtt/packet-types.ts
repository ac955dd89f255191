/** MQTT control packet names by type (the high nibble of the first byte), for messages about foreign bytes. */
export const PACKET_NAMES: readonly string[] = ['reserved', 'CONNECT', 'CONNACK', 'PUBLISH', 'PUBACK', 'PUBREC', 'PUBREL', 'PUBCOMP',
  'SUBSCRIBE', 'SUBACK', 'UNSUBSCRIBE', 'UNSUBACK', 'PINGREQ', 'PINGRESP', 'DISCONNECT', 'AUTH'];

/** The name of the packet a first byte announces, e.g. `PUBLISH`. */
export function packetName(firstByte: number): string {
  return PACKET_NAMES[firstByte >> 4]!;
}
