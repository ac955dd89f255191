import { ConnectionError } from '@tether/core';

/**
 * Why a TLS listener refused a connection. Each is a ConnectionError: the core logs it as one
 * "connection rejected" line with the reason and counts it as `rejected_<reason>`.
 */

/** The first byte is not a TLS handshake record (0x16): a plaintext client on the TLS port. */
export class TlsPlaintextError extends ConnectionError {
  constructor(firstByte: number) {
    const what = firstByte >> 4 === 1 ? 'plaintext MQTT (a CONNECT packet)' : `first byte 0x${firstByte.toString(16).padStart(2, '0')}, not a TLS handshake record`;
    super('TETHER_ERR_TLS_PLAINTEXT', 'tls_plaintext', `${what} on a TLS listener; use TLS (mqtts) on this port, or the plain listener`);
  }
}

/** strictSni: the client asked for a name no certificate serves, or for none. */
export class TlsUnknownSniError extends ConnectionError {
  constructor(servername: string | undefined) {
    super('TETHER_ERR_TLS_UNKNOWN_SNI', 'tls_unknown_sni', servername ? `no certificate for server name "${servername.slice(0, 255)}" (strictSni)` : 'the client sent no server name (SNI) and strictSni is on');
  }
}

export class TlsHandshakeTimeoutError extends ConnectionError {
  constructor(timeoutMs: number, stage: string) {
    super('TETHER_ERR_TLS_HANDSHAKE_TIMEOUT', 'tls_handshake_timeout', `TLS handshake not finished within ${timeoutMs} ms (${stage})`);
  }
}

/** verify: required and the client certificate is missing or fails verification. */
export class TlsBadClientCertError extends ConnectionError {
  /** OpenSSL's verification code (CERT_HAS_EXPIRED, UNABLE_TO_VERIFY_LEAF_SIGNATURE, ...). */
  readonly verifyCode: string;
  constructor(verifyCode: string, detail: string) {
    super('TETHER_ERR_TLS_BAD_CLIENT_CERT', 'tls_bad_client_cert', `client certificate rejected: ${detail}`);
    this.verifyCode = verifyCode;
  }
}

export class TlsHandshakeError extends ConnectionError {
  constructor(detail: string, options?: { cause?: unknown }) {
    super('TETHER_ERR_TLS_HANDSHAKE', 'tls_handshake_failed', `TLS handshake failed: ${detail}`, options);
  }
}
