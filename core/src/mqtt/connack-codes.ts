/**
 * Names of the codes a broker answers a CONNECT with, as snake_case words fit for a metric label
 * or a log field. MQTT 3.1 and 3.1.1 have return codes 0 to 5; MQTT 5 has reason codes, 0 or
 * 0x80 and above for a refusal (the two ranges do not overlap, so a code alone says which).
 */

/** MQTT 3.1.1 section 3.2.2.3 (the same in 3.1). */
const RETURN_CODES: Readonly<Record<number, string>> = {
  0: 'accepted',
  1: 'unacceptable_protocol_version',
  2: 'identifier_rejected',
  3: 'server_unavailable',
  4: 'bad_user_name_or_password',
  5: 'not_authorized',
};

/** MQTT 5 section 3.2.2.2, the codes a CONNACK may carry. */
const REASON_CODES: Readonly<Record<number, string>> = {
  0x00: 'success',
  0x80: 'unspecified_error',
  0x81: 'malformed_packet',
  0x82: 'protocol_error',
  0x83: 'implementation_specific_error',
  0x84: 'unsupported_protocol_version',
  0x85: 'client_identifier_not_valid',
  0x86: 'bad_user_name_or_password',
  0x87: 'not_authorized',
  0x88: 'server_unavailable',
  0x89: 'server_busy',
  0x8a: 'banned',
  0x8c: 'bad_authentication_method',
  0x90: 'topic_name_invalid',
  0x95: 'packet_too_large',
  0x97: 'quota_exceeded',
  0x99: 'payload_format_invalid',
  0x9a: 'retain_not_supported',
  0x9b: 'qos_not_supported',
  0x9c: 'use_another_server',
  0x9d: 'server_moved',
  0x9f: 'connection_rate_exceeded',
};

/** The name of a CONNACK code under the client's protocol level; `unknown` for a code the level does not define. */
export function connackReason(code: number, protocolVersion: 3 | 4 | 5): string {
  return (protocolVersion === 5 ? REASON_CODES[code] : RETURN_CODES[code]) ?? 'unknown';
}
