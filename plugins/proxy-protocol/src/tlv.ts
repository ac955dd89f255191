/**
 * PROXY protocol v2 TLVs (type-length-value extensions after the address block), as the spec
 * (proxy-protocol.txt, section 2.2) numbers them. Encoding here, decoding for the few a broker or
 * an operator reads; the header parser itself only frames TLVs and checks the CRC.
 */

export const PP2_TYPE_ALPN = 0x01;
export const PP2_TYPE_AUTHORITY = 0x02;
export const PP2_TYPE_CRC32C = 0x03;
export const PP2_TYPE_NOOP = 0x04;
export const PP2_TYPE_UNIQUE_ID = 0x05;
export const PP2_TYPE_SSL = 0x20;
export const PP2_SUBTYPE_SSL_VERSION = 0x21;
export const PP2_SUBTYPE_SSL_CN = 0x22;
export const PP2_SUBTYPE_SSL_CIPHER = 0x23;
export const PP2_SUBTYPE_SSL_SIG_ALG = 0x24;
export const PP2_SUBTYPE_SSL_KEY_ALG = 0x25;
export const PP2_TYPE_NETNS = 0x30;

/** Bits of the SSL TLV's `client` byte. */
export const PP2_CLIENT_SSL = 0x01;
export const PP2_CLIENT_CERT_CONN = 0x02;
export const PP2_CLIENT_CERT_SESS = 0x04;

/** The spec caps the unique id at 128 bytes (receivers such as HAProxy reject a longer one). */
export const UNIQUE_ID_MAX = 128;

/** One TLV as it travels: a type byte and its value (the 16-bit length is implied). */
export interface Tlv {
  readonly type: number;
  readonly value: Buffer;
}

/** type (1 byte), length (2 bytes, big endian), value. */
export function encodeTlv(type: number, value: Buffer): Buffer {
  if (value.length > 0xffff) throw new RangeError(`TLV 0x${type.toString(16)} value of ${value.length} bytes does not fit a 16-bit length`);
  const out = Buffer.alloc(3 + value.length);
  out[0] = type;
  out.writeUInt16BE(value.length, 1);
  value.copy(out, 3);
  return out;
}

/**
 * Splits a TLV area into TLVs, or says why it cannot: the area must be exactly a sequence of
 * whole TLVs (a truncated one would make the receiver read into the client's bytes).
 */
export function splitTlvs(area: Buffer): { tlvs: Tlv[] } | { error: string } {
  const tlvs: Tlv[] = [];
  let offset = 0;
  while (offset < area.length) {
    if (offset + 3 > area.length) return { error: `${area.length - offset} stray byte(s) after the last TLV` };
    const type = area[offset]!;
    const length = area.readUInt16BE(offset + 1);
    const end = offset + 3 + length;
    if (end > area.length) return { error: `TLV 0x${type.toString(16).padStart(2, '0')} declares ${length} bytes but only ${area.length - offset - 3} remain in the header` };
    tlvs.push({ type, value: area.subarray(offset + 3, end) });
    offset = end;
  }
  return { tlvs };
}

/** What the SSL TLV (0x20) says about the client's TLS connection. */
export interface SslTlv {
  /** PP2_CLIENT_* bits. */
  readonly client: number;
  /** 0 when the client presented a certificate that was verified; an X509_V_ERR_* code otherwise. */
  readonly verify: number;
  readonly version: string | undefined;
  readonly cn: string | undefined;
  readonly cipher: string | undefined;
  readonly sigAlg: string | undefined;
  readonly keyAlg: string | undefined;
}

/** The SSL TLV's value: client (1 byte), verify (4 bytes), then sub-TLVs. */
export function encodeSslValue(ssl: { client: number; verify: number; version?: string | undefined; cn?: string | undefined; cipher?: string | undefined }): Buffer {
  const head = Buffer.alloc(5);
  head[0] = ssl.client;
  head.writeUInt32BE(ssl.verify >>> 0, 1);
  // HAProxy's order (version, CN, cipher), so the two encodings of the same facts are equal.
  const subs: Buffer[] = [];
  if (ssl.version !== undefined) subs.push(encodeTlv(PP2_SUBTYPE_SSL_VERSION, Buffer.from(ssl.version, 'utf8')));
  if (ssl.cn !== undefined) subs.push(encodeTlv(PP2_SUBTYPE_SSL_CN, Buffer.from(ssl.cn, 'utf8')));
  if (ssl.cipher !== undefined) subs.push(encodeTlv(PP2_SUBTYPE_SSL_CIPHER, Buffer.from(ssl.cipher, 'utf8')));
  return Buffer.concat([head, ...subs]);
}

export function decodeSslValue(value: Buffer): SslTlv | { error: string } {
  if (value.length < 5) return { error: `SSL TLV of ${value.length} bytes is shorter than its 5-byte fixed part` };
  const split = splitTlvs(value.subarray(5));
  if ('error' in split) return { error: `SSL sub-TLVs: ${split.error}` };
  const text = (type: number): string | undefined => split.tlvs.find((t) => t.type === type)?.value.toString('utf8');
  return {
    client: value[0]!,
    verify: value.readUInt32BE(1),
    version: text(PP2_SUBTYPE_SSL_VERSION),
    cn: text(PP2_SUBTYPE_SSL_CN),
    cipher: text(PP2_SUBTYPE_SSL_CIPHER),
    sigAlg: text(PP2_SUBTYPE_SSL_SIG_ALG),
    keyAlg: text(PP2_SUBTYPE_SSL_KEY_ALG),
  };
}

/**
 * OpenSSL's X509_V_ERR_* numbers for the verification errors Node reports by name
 * (`authorizationError.code`), so the SSL TLV's `verify` carries the number a broker expects
 * (HAProxy sends SSL_get_verify_result). Names not listed become X509_V_ERR_UNSPECIFIED (1).
 */
const X509_V_ERR: Readonly<Record<string, number>> = {
  UNABLE_TO_GET_ISSUER_CERT: 2,
  UNABLE_TO_GET_CRL: 3,
  CERT_SIGNATURE_FAILURE: 7,
  CERT_NOT_YET_VALID: 9,
  CERT_HAS_EXPIRED: 10,
  DEPTH_ZERO_SELF_SIGNED_CERT: 18,
  SELF_SIGNED_CERT_IN_CHAIN: 19,
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 20,
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 21,
  CERT_CHAIN_TOO_LONG: 22,
  CERT_REVOKED: 23,
  INVALID_PURPOSE: 26,
  CERT_UNTRUSTED: 27,
  CERT_REJECTED: 28,
  HOSTNAME_MISMATCH: 62,
};
export const X509_V_ERR_UNSPECIFIED = 1;

export function x509VerifyCode(error: string | undefined): number {
  if (error === undefined) return X509_V_ERR_UNSPECIFIED;
  return X509_V_ERR[error.replace(/^(ERR_TLS_|X509_V_ERR_)/, '')] ?? X509_V_ERR_UNSPECIFIED;
}
