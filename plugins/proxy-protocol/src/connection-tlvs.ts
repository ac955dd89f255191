import type { TlsFacts } from '@tether/core';
import {
  encodeSslValue, encodeTlv, PP2_CLIENT_CERT_CONN, PP2_CLIENT_CERT_SESS, PP2_CLIENT_SSL, PP2_TYPE_ALPN, PP2_TYPE_AUTHORITY,
  PP2_TYPE_SSL, PP2_TYPE_UNIQUE_ID, x509VerifyCode,
} from './tlv.ts';

/** The TLVs the sink can add to a v2 header, by the names the configuration uses. */
export const TLV_NAMES = ['alpn', 'authority', 'unique-id', 'ssl', 'crc32c'] as const;
export type TlvName = (typeof TLV_NAMES)[number];

/**
 * The TLVs (encoded, in HAProxy's order: ALPN, authority, unique id, SSL) that describe one client
 * connection. Each comes from the connection's TLS facts, so a plain connection gets none of the
 * TLS ones: a TLV is left out rather than sent empty. `crc32c` is not here: it checksums the
 * finished header (see proxyV2).
 */
export function connectionTlvs(tls: TlsFacts | undefined, wanted: ReadonlySet<TlvName>, uniqueId: string | undefined): Buffer[] {
  const out: Buffer[] = [];
  if (wanted.has('alpn') && tls?.alpn) out.push(encodeTlv(PP2_TYPE_ALPN, Buffer.from(tls.alpn, 'utf8')));
  // The spec's authority is "the host name the client asked for": the TLS SNI.
  if (wanted.has('authority') && tls?.servername) out.push(encodeTlv(PP2_TYPE_AUTHORITY, Buffer.from(tls.servername, 'utf8')));
  if (wanted.has('unique-id') && uniqueId !== undefined) out.push(encodeTlv(PP2_TYPE_UNIQUE_ID, Buffer.from(uniqueId, 'latin1')));
  if (wanted.has('ssl') && tls) out.push(encodeTlv(PP2_TYPE_SSL, sslValue(tls)));
  return out;
}

/**
 * The SSL TLV's value. TlsFacts has no "certificate presented" flag: a verified certificate, a
 * CN, a SAN or a verification error means one was. Tether does not tell a resumed session from a full handshake, so a
 * presented certificate sets both CERT_CONN and CERT_SESS, as HAProxy does on a full handshake.
 * `verify` is 0 only for a verified certificate (the spec: "non-zero otherwise").
 */
function sslValue(tls: TlsFacts): Buffer {
  const presented = tls.verified || tls.peerCN !== undefined || tls.peerSAN.length > 0 || tls.verifyError !== undefined;
  return encodeSslValue({
    client: PP2_CLIENT_SSL | (presented ? PP2_CLIENT_CERT_CONN | PP2_CLIENT_CERT_SESS : 0),
    verify: tls.verified ? 0 : x509VerifyCode(tls.verifyError),
    version: tls.protocol || undefined,
    cn: presented ? tls.peerCN : undefined,
    cipher: tls.cipher || undefined,
  });
}
