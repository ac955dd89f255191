import mqttPacket from 'mqtt-packet';

/**
 * The CONNACK a client understands as "try later": MQTT 3.1.x return code 3 (server unavailable)
 * or MQTT 5 reason code 0x88 (server unavailable). Sent instead of a silent reset.
 */
export function serverUnavailableConnack(protocolVersion: 3 | 4 | 5): Buffer {
  if (protocolVersion === 5) {
    return mqttPacket.generate({ cmd: 'connack', sessionPresent: false, reasonCode: 0x88 }, { protocolVersion: 5 });
  }
  return mqttPacket.generate({ cmd: 'connack', sessionPresent: false, returnCode: 3 });
}

/**
 * The CONNACK for "not now, you in particular": MQTT 5 reason code 0x89 (server busy); MQTT 3.1.x
 * has no such code, so return code 3 (server unavailable), which clients also retry later.
 */
export function serverBusyConnack(protocolVersion: 3 | 4 | 5): Buffer {
  if (protocolVersion === 5) {
    return mqttPacket.generate({ cmd: 'connack', sessionPresent: false, reasonCode: 0x89 }, { protocolVersion: 5 });
  }
  return mqttPacket.generate({ cmd: 'connack', sessionPresent: false, returnCode: 3 });
}
