import type { TLSSocket } from 'node:tls';
import { commonName, parseSubjectAltNames } from './certificate-names.ts';
import type { TlsFacts } from '@tether/core';

/** OpenSSL's verdict on the client certificate, as Node reports it. */
export interface VerifyResult {
  /** e.g. CERT_HAS_EXPIRED, UNABLE_TO_VERIFY_LEAF_SIGNATURE. */
  readonly code: string;
  /** e.g. "certificate has expired". */
  readonly message: string;
}

interface VerifyingHandle {
  verifyError?(): (Error & { code?: string }) | null | undefined;
}

/**
 * Whether the client certificate verified against the CA. Node's verify callback accepts every
 * certificate during the handshake and judges afterwards; it exposes the verdict
 * (`authorized`, `authorizationError`) only on sockets a `tls.Server` created. We wrap sockets
 * ourselves (they come from Tether's own listener), so we ask the TLS handle, exactly where
 * `tls.Server` asks it. Should a future Node drop that method, every certificate counts as
 * unverified (fail closed) and the unit tests say so.
 */
export function verifyResult(socket: TLSSocket): VerifyResult | undefined {
  const handle = (socket as unknown as { ssl: VerifyingHandle | null }).ssl;
  if (typeof handle?.verifyError !== 'function') return { code: 'VERIFY_UNAVAILABLE', message: 'this Node.js does not report client certificate verification' };
  const err = handle.verifyError();
  return err ? { code: err.code ?? 'UNKNOWN', message: err.message } : undefined;
}

/** The facts extractors and sinks see, read once the handshake is done. */
export function tlsFacts(socket: TLSSocket, requested: boolean): TlsFacts {
  const peer = requested ? socket.getPeerX509Certificate() : undefined;
  const verify = peer ? verifyResult(socket) : undefined;
  return {
    protocol: socket.getProtocol() ?? 'unknown',
    cipher: socket.getCipher()?.name ?? 'unknown',
    // Node types it as string, but it is `false` when the client sent no SNI.
    servername: typeof socket.servername === 'string' && socket.servername ? socket.servername : undefined,
    alpn: typeof socket.alpnProtocol === 'string' ? socket.alpnProtocol : undefined,
    peerCN: peer ? commonName(peer.subject) : undefined,
    peerSAN: peer ? parseSubjectAltNames(peer.subjectAltName) : [],
    verified: peer !== undefined && verify === undefined,
    verifyError: verify?.code,
  };
}
