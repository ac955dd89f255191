import { createHash } from 'node:crypto';
import { WebSocketRejectError } from '../errors.ts';
import { headerTokens, type RequestHead } from './http-request-head.ts';

/** A WebSocket listener's options (`listeners[].websocket`). */
export interface WebSocketListenerOptions {
  /** The path clients upgrade on; other paths get 404. */
  readonly path: string;
  /** Subprotocols accepted, in the server's order of preference (`mqtt`, `mqttv3.1`). */
  readonly protocols: readonly string[];
  /** Largest request head accepted, in bytes; a longer one gets 431. */
  readonly maxHeaderBytes: number;
  /**
   * Bridge mode: largest WebSocket message a client may send after its CONNECT, in bytes (a larger
   * one closes the connection with 1009). `ws` holds a message whole before it passes it on, so
   * this bounds the memory one client can take; pass-through streams and is not bounded by it.
   */
  readonly maxMessageBytes: number;
}

/** MQTT's largest packet (256 MiB) plus its fixed header. */
export const MAX_MQTT_MESSAGE = 268_435_455 + 5;

export const WEBSOCKET_DEFAULTS: WebSocketListenerOptions = Object.freeze({ path: '/mqtt', protocols: Object.freeze(['mqtt', 'mqttv3.1']), maxHeaderBytes: 8192, maxMessageBytes: 1_048_576 });

/** What a valid opening agreed on. */
export interface Upgrade {
  readonly key: string;
  /** The subprotocol chosen (the first the client offered that the listener accepts). */
  readonly protocol: string;
  /** The 101 response Tether sends. */
  readonly response: Buffer;
}

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const KEY = /^[A-Za-z0-9+/]{22}==$/;

/** The `Sec-WebSocket-Accept` value for a client's key (RFC 6455 4.2.2). */
export function acceptFor(key: string): string {
  return createHash('sha1').update(key + GUID).digest('base64');
}

/**
 * Checks an opening request against the listener's options: a GET asking to upgrade to
 * WebSocket version 13, on the configured path, with a well-formed key and an accepted MQTT
 * subprotocol. Throws a WebSocketRejectError carrying the HTTP response to send.
 */
export function checkUpgrade(head: RequestHead, options: WebSocketListenerOptions): Upgrade {
  const h = head.headers;
  if (!headerTokens(h.get('upgrade')).includes('websocket') || !headerTokens(h.get('connection')).includes('upgrade')) {
    throw reject('ws_not_upgrade', 426, `plain HTTP request (${head.method} ${head.target.slice(0, 64)}) without Upgrade: websocket`, ['Upgrade: websocket', 'Connection: Upgrade']);
  }
  const path = head.target.split('?', 1)[0]!;
  if (path !== options.path) throw reject('ws_wrong_path', 404, `upgrade on path "${path.slice(0, 64)}", this listener serves "${options.path}"`);
  if (head.method !== 'GET' || head.version !== 'HTTP/1.1') throw reject('ws_bad_request', 400, `upgrade must be GET over HTTP/1.1 (got ${head.method} ${head.version})`);
  if (h.get('sec-websocket-version') !== '13') throw reject('ws_bad_version', 426, `Sec-WebSocket-Version "${h.get('sec-websocket-version') ?? ''}" (13 expected)`, ['Sec-WebSocket-Version: 13']);
  const key = h.get('sec-websocket-key') ?? '';
  if (!KEY.test(key)) throw reject('ws_bad_request', 400, 'missing or malformed Sec-WebSocket-Key');
  const offered = headerTokens(h.get('sec-websocket-protocol'));
  const protocol = options.protocols.find((p) => offered.includes(p.toLowerCase()));
  if (protocol === undefined) {
    const said = offered.length === 0 ? 'no subprotocol' : `subprotocol ${offered.join(', ').slice(0, 64)}`;
    throw reject('ws_bad_subprotocol', 400, `${said} offered; this listener speaks ${options.protocols.join(', ')}`);
  }
  const response = Buffer.from(
    `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptFor(key)}\r\nSec-WebSocket-Protocol: ${protocol}\r\n\r\n`,
    'latin1',
  );
  return { key, protocol, response };
}

const STATUS_TEXT: Record<number, string> = { 400: 'Bad Request', 404: 'Not Found', 408: 'Request Timeout', 426: 'Upgrade Required', 431: 'Request Header Fields Too Large' };

/** A short HTTP error response that closes the connection. */
export function httpError(status: number, message: string, extra: readonly string[] = []): Buffer {
  const body = `${message}\n`;
  const lines = [`HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? 'Error'}`, ...extra, 'Content-Type: text/plain; charset=utf-8', `Content-Length: ${Buffer.byteLength(body)}`, 'Connection: close'];
  return Buffer.from(`${lines.join('\r\n')}\r\n\r\n${body}`, 'utf8');
}

export function reject(reason: string, status: number, message: string, extra: readonly string[] = []): WebSocketRejectError {
  return new WebSocketRejectError(reason, message, httpError(status, message, extra));
}
