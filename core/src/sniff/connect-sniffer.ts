import mqttPacket, { type IConnectPacket, type Packet } from 'mqtt-packet';
import { ConnectMalformedError, SniffInvalidError, SniffTooLargeError, type ConnectionError } from '../errors.ts';
import { checkConnect } from '../mqtt/connect-check.ts';
import { packetName } from '../mqtt/packet-types.ts';

/** The three outcomes of looking at the bytes received so far (HAProxy's mqtt_validate_message). */
export type SniffResult =
  | { readonly kind: 'need-more'; readonly atLeast?: number }
  | { readonly kind: 'done'; readonly packet: IConnectPacket; readonly length: number }
  | { readonly kind: 'reject'; readonly error: ConnectionError };

const NEED_MORE: SniffResult = Object.freeze({ kind: 'need-more' });
const CONNECT_HEADER = 0x10;

/**
 * Decides whether `view` (every byte the client sent so far) starts with a complete, valid MQTT
 * CONNECT. Pure and synchronous: it never consumes or changes the bytes, so the caller can replay
 * them to the broker untouched. Frames the packet itself (fixed header and remaining length) so it
 * can reject an oversized or foreign first packet from its first bytes, then lets mqtt-packet parse
 * and validate exactly that one packet. `strict` (the default, `sniff.strict`) also refuses what
 * mqtt-packet lets through but the specification calls malformed (connect-check.ts).
 */
export function inspectConnect(view: Buffer, maxBytes: number, strict = true): SniffResult {
  if (view.length === 0) return NEED_MORE;
  const first = view[0]!;
  if (first !== CONNECT_HEADER) return reject(describeForeign(view));
  let remaining = 0;
  let multiplier = 1;
  let offset = 1;
  for (;;) {
    if (offset >= view.length) return NEED_MORE;
    if (offset > 4) return reject('remaining length is longer than 4 bytes');
    const byte = view[offset++]!;
    remaining += (byte & 0x7f) * multiplier;
    if ((byte & 0x80) === 0) {
      if (strict && byte === 0 && offset > 2) return malformed('not_shortest', 'remaining length is not in its shortest form');
      break;
    }
    multiplier *= 128;
  }
  const total = offset + remaining;
  if (total > maxBytes) return { kind: 'reject', error: new SniffTooLargeError(total, maxBytes) };
  if (view.length < total) return { kind: 'need-more', atLeast: total };
  const frame = view.subarray(0, total);
  const result = parseConnect(frame);
  if (!strict || result.kind !== 'done') return result;
  const fault = checkConnect(frame, offset);
  // `truncated` is mqtt-packet's to find; should it not, the packet is invalid all the same.
  if (fault) return fault.rule === 'truncated' ? reject(fault.detail) : malformed(fault.rule, fault.detail);
  return result;
}

function malformed(rule: string, detail: string): SniffResult {
  return { kind: 'reject', error: new ConnectMalformedError(rule, detail) };
}

/**
 * One parser for every connection: parsing is synchronous and the frame is exactly one packet, so
 * the parser is back at rest after each call. One that saw an error is replaced, since its state
 * after a failure is not documented.
 */
let parser = newParser();
let parsed: Packet | undefined;
let failure: Error | undefined;

function newParser(): ReturnType<typeof mqttPacket.parser> {
  const p = mqttPacket.parser();
  p.on('packet', (packet: Packet) => (parsed ??= packet));
  p.on('error', (err: Error) => (failure ??= err));
  return p;
}

function parseConnect(frame: Buffer): SniffResult {
  parsed = undefined;
  failure = undefined;
  parser.parse(frame);
  const packet = parsed as Packet | undefined;
  const error = failure as Error | undefined;
  parsed = undefined;
  failure = undefined;
  if (error) {
    parser = newParser();
    return reject(error.message);
  }
  if (packet?.cmd !== 'connect') {
    parser = newParser();
    return reject('packet could not be parsed');
  }
  return { kind: 'done', packet, length: frame.length };
}

function reject(detail: string): SniffResult {
  return { kind: 'reject', error: new SniffInvalidError(detail) };
}

/** Says what the first bytes look like, so an operator sees "TLS on a plain port" rather than hex. */
function describeForeign(view: Buffer): string {
  const first = view[0]!;
  const hex = `0x${first.toString(16).padStart(2, '0')}`;
  if (first === 0x16) return `first byte ${hex} looks like a TLS handshake (TLS sent to a plain MQTT listener?)`;
  if (/^[A-Z]{3,7} /.test(view.subarray(0, 8).toString('latin1'))) return `first bytes look like HTTP ("${view.subarray(0, 8).toString('latin1').trim()}")`;
  if (first === 0x50 && view.subarray(0, 5).toString('latin1') === 'PROXY') return 'first bytes are a PROXY protocol v1 header (PROXY not accepted on this listener)';
  if (first === 0x0d && view[1] === 0x0a) return 'first bytes look like a PROXY protocol v2 signature (PROXY not accepted on this listener)';
  if (first >> 4 === 1) return `CONNECT header ${hex} has reserved flag bits set`;
  return `first packet is ${packetName(first)} (header ${hex}), expected CONNECT`;
}
