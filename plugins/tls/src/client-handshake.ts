import { isIP } from 'node:net';
import type { Duplex } from 'node:stream';
import { connect, type TLSSocket } from 'node:tls';
import type { UpstreamTls } from './upstream-contexts.ts';
import { opensslReason } from './pem-files.ts';

/**
 * Starts TLS as a client over an established upstream stream and resolves once the handshake is
 * done (`secureConnect`), so the client's CONNECT is only ever written encrypted. With `verify`,
 * a broker certificate that does not chain to the CA or does not carry the expected name fails
 * the handshake. Bounded by `timeoutMs`; on failure the stream is destroyed.
 */
export function clientHandshake(stream: Duplex, host: string, upstream: UpstreamTls, timeoutMs: number): Promise<TLSSocket> {
  const { settings, context } = upstream;
  // SNI cannot carry an IP address (RFC 6066; Node warns if asked to).
  const servername = settings.servername ?? (isIP(host) ? undefined : host);
  return new Promise((resolve, reject) => {
    const tls = connect({
      socket: stream,
      // The name checked against the broker's certificate: servername when set, else the host
      // (an IP address is checked against the certificate's IP SANs).
      host: settings.servername ?? host,
      ...(servername ? { servername } : {}),
      secureContext: context,
      rejectUnauthorized: settings.verify,
      ...(settings.verify ? {} : { checkServerIdentity: () => undefined }),
      ...(settings.alpn ? { ALPNProtocols: [...settings.alpn] } : {}),
    });
    const timer = setTimeout(() => fail(new Error(`TLS handshake with the broker not finished within ${timeoutMs} ms`)), timeoutMs);
    const fail = (err: Error): void => {
      cleanup();
      tls.destroy();
      stream.destroy();
      reject(err);
    };
    const onError = (err: NodeJS.ErrnoException): void => fail(new Error(`TLS towards the broker failed: ${opensslReason(err)}${err.code ? ` (${err.code})` : ''}`, { cause: err }));
    const onClose = (): void => fail(new Error('the broker closed the connection during the TLS handshake'));
    const onSecure = (): void => {
      cleanup();
      resolve(tls);
    };
    const cleanup = (): void => {
      clearTimeout(timer);
      tls.off('error', onError);
      tls.off('close', onClose);
      tls.off('secureConnect', onSecure);
    };
    tls.once('error', onError);
    tls.once('close', onClose);
    tls.once('secureConnect', onSecure);
  });
}
