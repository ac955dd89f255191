import type { Socket } from 'node:net';
import { TLSSocket, type SecureContext } from 'node:tls';
import { ConnectionError } from '@tether/core';
import type { CertificateSet } from './certificate-set.ts';
import { firstByte, TLS_HANDSHAKE_RECORD } from './first-bytes.ts';
import type { VerifyMode } from './options.ts';
import { opensslReason } from './pem-files.ts';
import { verifyResult } from './tls-facts.ts';
import { TlsBadClientCertError, TlsHandshakeError, TlsHandshakeTimeoutError, TlsPlaintextError, TlsUnknownSniError } from './tls-errors.ts';

export interface ServerHandshakeOptions {
  /** The certificates as they are now; the whole handshake uses this one set. */
  readonly certificates: CertificateSet;
  readonly verify: VerifyMode;
  readonly strictSni: boolean;
  /** ALPN protocols offered, in preference order; undefined negotiates none. */
  readonly alpn: readonly string[] | undefined;
  /** Bound on the whole of it: first byte, ClientHello, handshake. */
  readonly timeoutMs: number;
}

/**
 * Terminates TLS on an accepted connection: checks that the client speaks TLS at all (first
 * byte), wraps the socket in a server-side TLSSocket with the certificate chosen by SNI, waits
 * for the handshake (bounded), then applies what Node leaves to its caller: the client
 * certificate verdict for `verify: required`, and strictSni for clients that sent no name.
 * Resolves with the TLS socket; on any failure destroys both sockets and rejects with a
 * ConnectionError whose reason says what went wrong.
 */
export async function serverHandshake(socket: Socket, options: ServerHandshakeOptions): Promise<TLSSocket> {
  let tls: TLSSocket | undefined;
  let timer: NodeJS.Timeout | undefined;
  let stage = 'no data from the client';
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TlsHandshakeTimeoutError(options.timeoutMs, stage)), options.timeoutMs);
  });
  try {
    const first = await Promise.race([firstByte(socket), expired]);
    if (first !== TLS_HANDSHAKE_RECORD) throw new TlsPlaintextError(first);
    stage = 'ClientHello received, handshake incomplete';
    tls = wrap(socket, options);
    await Promise.race([secured(tls), expired]);
    if (options.strictSni && !tls.servername) throw new TlsUnknownSniError(undefined);
    if (options.verify === 'required') {
      const verdict = verifyResult(tls);
      if (verdict) throw new TlsBadClientCertError(verdict.code, `${describePeer(tls)}: ${verdict.code} (${verdict.message})`);
    }
    superviseAfterHandshake(tls);
    return tls;
  } catch (err) {
    tls?.destroy();
    socket.destroy();
    throw classify(err);
  } finally {
    clearTimeout(timer);
  }
}

function wrap(socket: Socket, options: ServerHandshakeOptions): TLSSocket {
  const { certificates, strictSni, verify } = options;
  return new TLSSocket(socket, {
    isServer: true,
    secureContext: certificates.default.context,
    // required: OpenSSL itself fails a handshake without a certificate; a certificate that is
    // presented but does not verify is judged after the handshake (Node's verify callback
    // accepts all), above.
    requestCert: verify !== 'none',
    rejectUnauthorized: verify === 'required',
    ...(options.alpn ? { ALPNProtocols: [...options.alpn] } : {}),
    SNICallback: (servername: string, done: (err: Error | null, ctx?: SecureContext) => void) => {
      const found = certificates.lookup(servername);
      if (found) return done(null, found.context);
      if (strictSni) return done(new TlsUnknownSniError(servername));
      done(null, undefined); // the default certificate, already in place
    },
  });
}

/** Resolves when the handshake is done; rejects with the TLS error, or when the client leaves. */
function secured(tls: TLSSocket): Promise<void> {
  return new Promise((resolve, reject) => {
    const onSecure = (): void => {
      cleanup();
      resolve();
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(err);
    };
    const onClose = (): void => {
      cleanup();
      reject(new TlsHandshakeError('the client closed the connection during the handshake (does it trust the server certificate?)'));
    };
    const cleanup = (): void => {
      tls.off('secure', onSecure);
      tls.off('error', onError);
      tls.off('close', onClose);
    };
    tls.once('secure', onSecure);
    tls.once('error', onError);
    tls.once('close', onClose);
  });
}

/**
 * Node hands a server socket's TLS errors after the handshake (a corrupt record, a fatal alert)
 * to the tls.Server that created it, and only reports them on the socket ('_tlsError') without
 * closing it. Ours has no tls.Server, so close it here, as tls.Server's sockets are closed: the
 * splice then sees the error and closes the broker side too.
 */
function superviseAfterHandshake(tls: TLSSocket): void {
  tls.on('_tlsError', (err: Error) => tls.destroy(err));
}

function describePeer(tls: TLSSocket): string {
  const peer = tls.getPeerX509Certificate();
  return peer ? peer.subject.replace(/\n/g, ', ') : 'no certificate';
}

/** Every failure as a ConnectionError, so the core counts it under a TLS reason. */
function classify(err: unknown): ConnectionError {
  if (err instanceof ConnectionError) return err;
  const e = err as NodeJS.ErrnoException;
  if (e?.code === 'ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE') {
    return new TlsBadClientCertError('NO_CLIENT_CERTIFICATE', 'the client sent no certificate and verify is required');
  }
  if (e?.code === 'ECONNRESET' || e?.code === 'EPIPE') return new TlsHandshakeError('the client reset the connection during the handshake', { cause: err });
  return new TlsHandshakeError(`${opensslReason(err)}${e?.code ? ` (${e.code})` : ''}`, { cause: err });
}
