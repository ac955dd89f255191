import type { TlsFacts } from '@tether/core';
import { testConn } from '@tether/core/testing';
import { describe, expect, it } from 'vitest';
import { connectionTlvs, type TlvName } from '../src/connection-tlvs.ts';
import { crc32c } from '../src/crc32c.ts';
import { decodeSslValue, encodeSslValue, encodeTlv, splitTlvs, x509VerifyCode } from '../src/tlv.ts';

// Expected bytes are written out from the spec's layout (proxy-protocol.txt 2.2), field by field.

/** `type`, 16-bit big-endian length, value: one TLV as hex. */
const tlvHex = (type: number, value: string | Buffer): string => {
  const bytes = typeof value === 'string' ? Buffer.from(value, 'latin1') : value;
  return type.toString(16).padStart(2, '0') + bytes.length.toString(16).padStart(4, '0') + bytes.toString('hex');
};

const TLS: TlsFacts = {
  protocol: 'TLSv1.3',
  cipher: 'TLS_AES_256_GCM_SHA384',
  servername: 'broker.example.com',
  alpn: 'mqtt',
  peerCN: 'device-42',
  peerSAN: ['DNS:device-42.example.com'],
  verified: true,
  verifyError: undefined,
};

const ALL: ReadonlySet<TlvName> = new Set(['alpn', 'authority', 'unique-id', 'ssl']);

describe('crc32c', () => {
  // RFC 3720, appendix B.4, and the customary "123456789" check value of CRC-32C.
  it.each([
    ['32 zero bytes', Buffer.alloc(32), 0x8a9136aa],
    ['32 bytes of 0xff', Buffer.alloc(32, 0xff), 0x62a8ab43],
    ['32 incrementing bytes', Buffer.from(Array.from({ length: 32 }, (_, i) => i)), 0x46dd794e],
    ['32 decrementing bytes', Buffer.from(Array.from({ length: 32 }, (_, i) => 31 - i)), 0x113fdb5c],
    ['"123456789"', Buffer.from('123456789'), 0xe3069283],
  ])('matches the published check value for %s', (_case, bytes, expected) => {
    expect(crc32c(bytes)).toBe(expected);
  });
});

describe('TLV encoding', () => {
  it('is type, 16-bit big-endian length, value', () => {
    expect(encodeTlv(0x01, Buffer.from('mqtt')).toString('hex')).toBe('0100046d717474');
    expect(encodeTlv(0x05, Buffer.alloc(0x0102, 0x61)).subarray(0, 3).toString('hex')).toBe('050102');
    expect(() => encodeTlv(0x04, Buffer.alloc(0x10000))).toThrow(/does not fit a 16-bit length/);
  });

  it('splits back exactly what was joined, and refuses a truncated area', () => {
    const area = Buffer.concat([encodeTlv(0x01, Buffer.from('mqtt')), encodeTlv(0x04, Buffer.alloc(0)), encodeTlv(0xe0, Buffer.from([1, 2, 3]))]);
    expect(splitTlvs(area)).toEqual({ tlvs: [{ type: 0x01, value: Buffer.from('mqtt') }, { type: 0x04, value: Buffer.alloc(0) }, { type: 0xe0, value: Buffer.from([1, 2, 3]) }] });
    expect(splitTlvs(area.subarray(0, area.length - 1))).toEqual({ error: 'TLV 0xe0 declares 3 bytes but only 2 remain in the header' });
  });
});

describe('the SSL TLV value', () => {
  it('is client flags, verify (32 bits), then version, CN and cipher sub-TLVs, in HAProxy\'s order', () => {
    const value = encodeSslValue({ client: 0x07, verify: 0, version: 'TLSv1.3', cn: 'device-42', cipher: 'TLS_AES_256_GCM_SHA384' });
    expect(value.toString('hex')).toBe(`07${'00000000'}${tlvHex(0x21, 'TLSv1.3')}${tlvHex(0x22, 'device-42')}${tlvHex(0x23, 'TLS_AES_256_GCM_SHA384')}`);
    expect(decodeSslValue(value)).toEqual({ client: 7, verify: 0, version: 'TLSv1.3', cn: 'device-42', cipher: 'TLS_AES_256_GCM_SHA384', sigAlg: undefined, keyAlg: undefined });
  });

  it('decoding refuses a value shorter than its fixed part or with broken sub-TLVs', () => {
    expect(decodeSslValue(Buffer.from('0700', 'hex'))).toEqual({ error: 'SSL TLV of 2 bytes is shorter than its 5-byte fixed part' });
    expect(decodeSslValue(Buffer.from('0700000000210009', 'hex'))).toMatchObject({ error: expect.stringMatching(/^SSL sub-TLVs: TLV 0x21 declares 9 bytes/) });
  });

  it.each([
    [undefined, 1],
    ['DEPTH_ZERO_SELF_SIGNED_CERT', 18],
    ['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 21],
    ['CERT_HAS_EXPIRED', 10],
    ['X509_V_ERR_CERT_REVOKED', 23],
    ['something the table does not know', 1],
  ])('maps the verification error %j to X509_V_ERR number %d', (error, code) => {
    expect(x509VerifyCode(error)).toBe(code);
  });
});

describe('connectionTlvs: from the connection\'s TLS facts', () => {
  const tlsConn = testConn({ facts: { tls: TLS } });

  it('a verified client certificate: every TLV, in HAProxy\'s order (ALPN, authority, unique id, SSL)', () => {
    const tlvs = connectionTlvs(tlsConn.tls, ALL, 'id-1');
    expect(Buffer.concat(tlvs).toString('hex')).toBe([
      tlvHex(0x01, 'mqtt'),
      tlvHex(0x02, 'broker.example.com'),
      tlvHex(0x05, 'id-1'),
      // client = SSL | CERT_CONN | CERT_SESS, verify = 0 (verified)
      tlvHex(0x20, Buffer.from(`0700000000${tlvHex(0x21, 'TLSv1.3')}${tlvHex(0x22, 'device-42')}${tlvHex(0x23, 'TLS_AES_256_GCM_SHA384')}`, 'hex')),
    ].join(''));
  });

  it('only the TLVs asked for', () => {
    expect(connectionTlvs(tlsConn.tls, new Set(['authority']), 'id-1').map((t) => t[0])).toEqual([0x02]);
    expect(connectionTlvs(tlsConn.tls, new Set(['ssl', 'alpn']), 'id-1').map((t) => t[0])).toEqual([0x01, 0x20]);
    expect(connectionTlvs(tlsConn.tls, new Set(), 'id-1')).toEqual([]);
  });

  it('a certificate that failed verification: CERT bits set, verify carries the X509 error', () => {
    const [ssl] = connectionTlvs({ ...TLS, verified: false, verifyError: 'DEPTH_ZERO_SELF_SIGNED_CERT' }, new Set(['ssl']), undefined);
    expect(decodeSslValue(ssl!.subarray(3))).toMatchObject({ client: 0x07, verify: 18, cn: 'device-42' });
  });

  it('a certificate with neither CN nor SAN that failed verification still counts as presented', () => {
    const [ssl] = connectionTlvs({ ...TLS, peerCN: undefined, peerSAN: [], verified: false, verifyError: 'CERT_HAS_EXPIRED' }, new Set(['ssl']), undefined);
    expect(decodeSslValue(ssl!.subarray(3))).toMatchObject({ client: 0x07, verify: 10, cn: undefined });
  });

  it('no client certificate: only the SSL bit, no CN, and a non-zero verify (the spec: zero only for a verified certificate)', () => {
    const [ssl] = connectionTlvs({ ...TLS, peerCN: undefined, peerSAN: [], verified: false }, new Set(['ssl']), undefined);
    expect(decodeSslValue(ssl!.subarray(3))).toEqual({ client: 0x01, verify: 1, version: 'TLSv1.3', cn: undefined, cipher: 'TLS_AES_256_GCM_SHA384', sigAlg: undefined, keyAlg: undefined });
  });

  it('no SNI and no ALPN: those TLVs are left out rather than sent empty', () => {
    const tlvs = connectionTlvs({ ...TLS, servername: undefined, alpn: undefined }, ALL, 'id-1');
    expect(tlvs.map((t) => t[0])).toEqual([0x05, 0x20]);
  });

  it('a plain (non-TLS) connection gets none of the TLS TLVs, only the unique id', () => {
    expect(connectionTlvs(testConn().tls, ALL, 'id-1').map((t) => t.toString('hex'))).toEqual([tlvHex(0x05, 'id-1')]);
  });
});
