import type { Duplex } from 'node:stream';
import { UpstreamConnectError } from '../errors.ts';
import type { ConnFacts } from '../plugin.ts';
import { readRequestHead } from './http-request-head.ts';
import { acceptFor } from './websocket-handshake.ts';
import type { Opening } from './opening-reader.ts';

/** The broker's answer to an Upgrade is small; anything longer is not a WebSocket endpoint. */
const MAX_RESPONSE_BYTES = 8192;
/**
 * Headers not passed on as the client sent them: the forwarding ones are rewritten with this hop,
 * and extensions are dropped because Tether's own 101 agreed to none (the frames it replays and
 * splices must mean the same thing to the broker as they did to the client).
 */
const REWRITTEN = new Set(['x-forwarded-for', 'forwarded', 'sec-websocket-extensions']);

/**
 * The client's Upgrade request as the broker gets it in pass-through: its request line with the
 * backend's path (the query kept), its headers in their order and spelling, and where the client
 * really is: `X-Forwarded-For` (the client's own list, if any, with this hop appended) and
 * RFC 7239 `Forwarded` (likewise). No `Sec-WebSocket-Extensions`: see REWRITTEN. The
 * `Sec-WebSocket-Protocol` line names only the subprotocol Tether's 101 already chose, so a broker
 * that would pick by the client's order cannot choose another (the 101s must agree).
 */
export function forwardedRequest(opening: Opening, backendPath: string, facts: ConnFacts): Buffer {
  const lines = opening.request.toString('latin1', 0, opening.head.length - 4).split('\r\n');
  const query = opening.head.target.includes('?') ? opening.head.target.slice(opening.head.target.indexOf('?')) : '';
  const out = [`GET ${backendPath}${query} HTTP/1.1`];
  for (let i = 1; i < lines.length; i++) {
    const name = lines[i]!.slice(0, lines[i]!.indexOf(':')).trim().toLowerCase();
    if (name === 'sec-websocket-protocol') out.push(`${lines[i]!.slice(0, lines[i]!.indexOf(':'))}: ${opening.upgrade.protocol}`);
    else if (!REWRITTEN.has(name)) out.push(lines[i]!);
  }
  const address = facts.remoteAddress;
  const node = facts.family === 'IPv6' ? `"[${address}]"` : address;
  const proto = facts.tls ? 'https' : 'http';
  const xff = opening.head.headers.get('x-forwarded-for');
  const forwarded = opening.head.headers.get('forwarded');
  out.push(`X-Forwarded-For: ${xff ? `${xff}, ` : ''}${address}`);
  out.push(`Forwarded: ${forwarded ? `${forwarded}, ` : ''}for=${node};proto=${proto}`);
  return Buffer.from(`${out.join('\r\n')}\r\n\r\n`, 'latin1');
}

/**
 * Pass-through's handshake with the broker: sends the forwarded Upgrade request and reads the
 * broker's response head, bounded in size and by `timeoutMs`. The client already has its 101
 * (Tether sent it to read the CONNECT), so the broker's must agree with it: status 101, the same
 * `Sec-WebSocket-Accept` (it depends only on the client's key) and the same subprotocol. Resolves
 * with whatever the broker sent after its head (to be forwarded to the client); a broker that
 * refuses is an UpstreamConnectError, so the pipeline tries another backend.
 */
export function upgradeUpstream(upstream: Duplex, backendId: string, request: Buffer, opening: Opening, timeoutMs: number): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    let received: Buffer = Buffer.alloc(0);
    const fail = (detail: string): void => {
      cleanup();
      reject(new UpstreamConnectError(backendId, `WebSocket upgrade: ${detail}`));
    };
    const onData = (chunk: Buffer): void => {
      received = received.length === 0 ? chunk : Buffer.concat([received, chunk]);
      const end = received.indexOf('\r\n\r\n');
      if (end < 0) {
        if (received.length > MAX_RESPONSE_BYTES) fail(`response head longer than ${MAX_RESPONSE_BYTES} bytes`);
        return;
      }
      upstream.pause();
      cleanup();
      const problem = checkResponse(received.toString('latin1', 0, end), opening);
      if (problem) return reject(new UpstreamConnectError(backendId, `WebSocket upgrade: ${problem}`));
      resolve(received.subarray(end + 4));
    };
    const onEnd = (): void => fail('the broker closed before its 101 response');
    const onError = (err: Error): void => fail(err.message);
    const timer = setTimeout(() => fail(`no 101 response within ${timeoutMs} ms`), timeoutMs);
    function cleanup(): void {
      clearTimeout(timer);
      upstream.off('data', onData);
      upstream.off('end', onEnd);
      upstream.off('close', onEnd);
      upstream.off('error', onError);
    }
    upstream.on('data', onData);
    upstream.once('end', onEnd);
    upstream.once('close', onEnd);
    upstream.once('error', onError);
    upstream.write(request);
  });
}

/** Why the broker's response head does not match what the client was told, or undefined when it does. */
function checkResponse(head: string, opening: Opening): string | undefined {
  const status = /^HTTP\/1\.1 (\d{3})/.exec(head)?.[1];
  if (status !== '101') return `the broker answered "${head.split('\r\n', 1)[0]!.slice(0, 64)}"`;
  // Parse the headers with the request-head reader's rules, from a synthetic request line.
  const parsed = readRequestHead(Buffer.from(`GET / HTTP/1.1${head.slice(head.indexOf('\r\n'))}\r\n\r\n`, 'latin1'), MAX_RESPONSE_BYTES + 64);
  if (parsed.kind !== 'done') return 'malformed response headers';
  const headers = parsed.head.headers;
  if (headers.get('sec-websocket-accept') !== acceptFor(opening.upgrade.key)) return 'Sec-WebSocket-Accept does not match the client\'s key';
  const protocol = headers.get('sec-websocket-protocol');
  if (protocol !== undefined && protocol.toLowerCase() !== opening.upgrade.protocol.toLowerCase()) return `the broker chose subprotocol "${protocol}", the client was given "${opening.upgrade.protocol}"`;
  if (headers.get('sec-websocket-extensions') !== undefined) return 'the broker agreed an extension the client was not offered by Tether';
  return undefined;
}
