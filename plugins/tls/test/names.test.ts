import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { skipReason } from '../../../test/harness/binaries.ts';
import { createTestPki, type TestPki } from '../../../test/harness/tls-certs.ts';
import { commonName, parseSubjectAltNames, serverNamesOf } from '../src/certificate-names.ts';
import { ServerNameIndex } from '../src/server-name-index.ts';

describe('parseSubjectAltNames', () => {
  it('splits Node\'s subjectAltName text into type:value entries', () => {
    expect(parseSubjectAltNames('DNS:a.test, DNS:b.test, email:x@y.test, URI:urn:device:1')).toEqual(['DNS:a.test', 'DNS:b.test', 'email:x@y.test', 'URI:urn:device:1']);
  });

  it('reads quoted values, which may hold ", " themselves, and writes IP Address as IP', () => {
    expect(parseSubjectAltNames('DNS:"a, b.test", IP Address:127.0.0.1, URI:"urn:x:\\"q\\""')).toEqual(['DNS:a, b.test', 'IP:127.0.0.1', 'URI:urn:x:"q"']);
  });

  it('gives an empty list for no SANs', () => {
    expect(parseSubjectAltNames(undefined)).toEqual([]);
    expect(parseSubjectAltNames('')).toEqual([]);
  });
});

describe('commonName', () => {
  it('finds the CN line of a subject, the last one when there are several', () => {
    expect(commonName('C=DE\nO=Acme\nCN=device-1')).toBe('device-1');
    expect(commonName('CN=first\nCN=second')).toBe('second');
    expect(commonName('O=Acme')).toBeUndefined();
    expect(commonName(undefined)).toBeUndefined();
  });
});

describe('ServerNameIndex', () => {
  it('matches exact names case-insensitively, ignoring a trailing dot', () => {
    const index = new ServerNameIndex<string>();
    index.add('Alpha.Test', 'a');
    expect(index.find('alpha.test')).toBe('a');
    expect(index.find('ALPHA.TEST.')).toBe('a');
    expect(index.find('beta.test')).toBeUndefined();
  });

  it('matches a wildcard for exactly one label, and prefers an exact name', () => {
    const index = new ServerNameIndex<string>();
    index.add('*.example.test', 'wild');
    index.add('www.example.test', 'www');
    expect(index.find('api.example.test')).toBe('wild');
    expect(index.find('www.example.test')).toBe('www');
    expect(index.find('example.test')).toBeUndefined();
    expect(index.find('a.b.example.test')).toBeUndefined();
  });

  it('keeps the first entry for a name (configuration order decides)', () => {
    const index = new ServerNameIndex<string>();
    index.add('a.test', 'first');
    index.add('a.test', 'second');
    expect(index.find('a.test')).toBe('first');
    expect(index.names).toEqual(['a.test']);
  });
});

const missing = skipReason('openssl');

describe.skipIf(missing !== '')(`serverNamesOf, on certificates made by openssl${missing}`, () => {
  let pki: TestPki;
  beforeAll(async () => {
    pki = await createTestPki();
  });
  afterAll(() => pki?.remove());

  it('takes the DNS SANs, not the IP ones', () => {
    expect(serverNamesOf(new X509Certificate(readFileSync(pki.alpha.cert)))).toEqual(['alpha.test', 'localhost']);
    expect(serverNamesOf(new X509Certificate(readFileSync(pki.beta.cert)))).toEqual(['beta.test']);
  });

  it('falls back to the CN when the certificate has no DNS SAN', () => {
    // The CA certificate has no SANs at all.
    expect(serverNamesOf(new X509Certificate(readFileSync(pki.ca.cert)))).toEqual(['tether test ca']);
  });

  it('reads a client certificate\'s SANs as the facts show them', () => {
    const x509 = new X509Certificate(readFileSync(pki.device1.cert));
    expect(parseSubjectAltNames(x509.subjectAltName)).toEqual(['DNS:device-1.devices.test', 'email:device-1@devices.test', 'URI:urn:device:device-1']);
    expect(commonName(x509.subject)).toBe('device-1');
  });
});
