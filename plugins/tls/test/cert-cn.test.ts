import type { Extractor } from '@tether/core';
import { testConn } from '@tether/core/testing';
import { describe, expect, it } from 'vitest';
import { certCn } from '../src/cert-cn.ts';
import type { TlsFacts } from '@tether/core';
import { make } from './helpers.ts';

const DEVICE: TlsFacts = {
  protocol: 'TLSv1.3', cipher: 'TLS_AES_256_GCM_SHA384', servername: 'alpha.test', alpn: undefined,
  peerCN: 'device-1', peerSAN: ['DNS:device-1.devices.test', 'email:device-1@devices.test', 'URI:urn:device:device-1'],
  verified: true, verifyError: undefined,
};

const extractor = async (options: Record<string, unknown> = {}): Promise<Extractor> => (await make<Extractor>(certCn, options)).product;
const withTls = (tls: TlsFacts | undefined) => testConn({ connect: { clientId: 'whatever-the-device-says' }, facts: { tls } });

describe('cert-cn', () => {
  it('keys a verified client by its certificate CN, not its client id', async () => {
    expect((await extractor()).extract(withTls(DEVICE))).toBe('device-1');
  });

  it('can take the first DNS, email or URI SAN instead', async () => {
    expect((await extractor({ field: 'san:dns' })).extract(withTls(DEVICE))).toBe('device-1.devices.test');
    expect((await extractor({ field: 'san:email' })).extract(withTls(DEVICE))).toBe('device-1@devices.test');
    expect((await extractor({ field: 'san:uri' })).extract(withTls(DEVICE))).toBe('urn:device:device-1');
    expect((await extractor({ field: 'san:uri' })).extract(withTls({ ...DEVICE, peerSAN: ['DNS:x.test'] }))).toBeUndefined();
  });

  it('passes (undefined) for plain connections, clients without a certificate, and unverified ones unless told otherwise', async () => {
    const e = await extractor();
    expect(e.extract(withTls(undefined))).toBeUndefined();
    expect(e.extract(withTls({ ...DEVICE, peerCN: undefined, peerSAN: [], verified: false }))).toBeUndefined();
    const unverified = { ...DEVICE, verified: false, verifyError: 'CERT_HAS_EXPIRED' };
    expect(e.extract(withTls(unverified))).toBeUndefined();
    expect((await extractor({ verifiedOnly: false })).extract(withTls(unverified))).toBe('device-1');
  });

  it('refuses an unknown field', async () => {
    await expect(make(certCn, { field: 'san:ip' })).rejects.toThrow(/field: must be one of/);
  });
});
