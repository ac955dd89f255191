import { copyFileSync, mkdtempSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect as tcpConnect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { createServer, type TLSSocket } from 'node:tls';
import type { Sink } from '@tether/core';
import { testBackend, testConn } from '@tether/core/testing';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { skipReason } from '../../../test/harness/binaries.ts';
import { createTestPki, type TestPki } from '../../../test/harness/tls-certs.ts';
import { tlsUpstream } from '../src/tls-upstream.ts';
import { make, tcpServer, within, type Made } from './helpers.ts';

/** tls-upstream against a Node TLS server standing in for a broker (mosquitto: test/integration/tls-upstream.test.ts). */

const missing = skipReason('openssl');
let pki: TestPki;
const cleanups: (() => unknown)[] = [];
beforeAll(async () => {
  if (missing === '') pki = await createTestPki();
});
afterAll(() => pki?.remove());
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const pem = (path: string): Buffer => readFileSync(path);

/** A TLS "broker" on loopback that echoes and records the client certificate CN it saw. */
async function broker(options: { requireCert?: boolean } = {}): Promise<{ port: number; peers: (string | undefined)[] }> {
  const peers: (string | undefined)[] = [];
  const server = createServer({ cert: pem(pki.alpha.cert), key: pem(pki.alpha.key), ca: pem(pki.ca.cert), requestCert: options.requireCert ?? false, rejectUnauthorized: options.requireCert ?? false }, (s: TLSSocket) => {
    peers.push(s.getPeerX509Certificate()?.subject);
    s.pipe(s);
  });
  server.on('tlsClientError', () => undefined);
  await new Promise<void>((resolve) => server.listen({ host: '127.0.0.1', port: 0 }, resolve));
  cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => sockets.add(s));
  cleanups.push(() => sockets.forEach((s) => s.destroy()));
  return { port: (server.address() as { port: number }).port, peers };
}

function tcp(port: number): Promise<Socket> {
  return within(new Promise((resolve, reject) => {
    const s = tcpConnect({ host: '127.0.0.1', port }, () => resolve(s));
    s.once('error', reject);
    cleanups.push(() => s.destroy());
  }), 'a TCP connection to the broker');
}

async function echo(stream: Duplex, text: string): Promise<string> {
  const got = new Promise<string>((resolve) => stream.once('data', (d: Buffer) => resolve(d.toString())));
  stream.write(text);
  return within(got, 'the echo');
}

const BACKENDS = [testBackend('emqx1'), testBackend('emqx2'), testBackend('legacy')];

/** The sink as the core creates it; its lifetime ends with the test (its SIGHUP handler goes). */
async function sink(options: Record<string, unknown>, backends = BACKENDS): Promise<Made<Sink>> {
  const made = await make<Sink>(tlsUpstream, options, backends);
  cleanups.push(() => made.lifetime.abort());
  return made;
}

describe.skipIf(missing !== '')(`tls-upstream${missing}`, () => {
  it('refuses backend names that are not configured, and cert without key', async () => {
    await expect(make(tlsUpstream, { backends: { emqx3: {} } }, BACKENDS)).rejects.toThrow(/backends: emqx3 is not a configured backend \(known: emqx1, emqx2, legacy\)/);
    await expect(make(tlsUpstream, { backends: { emqx1: { cert: pki.tetherClient.cert } } }, BACKENDS)).rejects.toThrow(/emqx1: cert and key go together/);
    await expect(make(tlsUpstream, { all: { verify: 'yes' } }, BACKENDS)).rejects.toThrow(/all\.verify must be true or false/);
    await expect(make(tlsUpstream, { all: { cafile: 'x' } }, BACKENDS)).rejects.toThrow(/unknown keys: cafile/);
    await expect(make(tlsUpstream, { all: { ca: `${pki.dir}/none.pem` } }, BACKENDS)).rejects.toThrow(/CA bundle .*none\.pem cannot be read: no such file/);
  });

  it('wraps the backends configured for TLS, and only those', async () => {
    const b = await broker();
    const { product } = await sink({ all: { ca: pki.ca.cert, servername: 'alpha.test' }, backends: { legacy: false } });
    const plain = await tcp(b.port);
    expect(await product.attach(testConn(), BACKENDS[2]!, plain)).toBe(plain);
    const secured = await product.attach(testConn(), BACKENDS[0]!, await tcp(b.port));
    expect((secured as TLSSocket).encrypted).toBe(true);
    expect(await echo(secured, 'CONNECT')).toBe('CONNECT');
  });

  it('checks the broker certificate against the CA and the name, by default', async () => {
    // The broker sends its chain up to our test CA, which the other CA does not know.
    const b = await broker();
    const { product, stats } = await sink({ backends: { emqx1: { ca: pki.otherCa.cert, servername: 'alpha.test' }, emqx2: { ca: pki.ca.cert, servername: 'wrong.test' } } });
    await expect(product.attach(testConn(), BACKENDS[0]!, await tcp(b.port))).rejects.toThrow('backend emqx1: TLS towards the broker failed: self-signed certificate in certificate chain (SELF_SIGNED_CERT_IN_CHAIN)');
    await expect(product.attach(testConn(), BACKENDS[1]!, await tcp(b.port))).rejects.toThrow(/^backend emqx2: TLS towards the broker failed: .*wrong\.test.*\(ERR_TLS_CERT_ALTNAME_INVALID\)/);
    expect(stats.get('tls_upstream_handshake_failures')).toBe(2);
  });

  it('checks an IP address host against the certificate\'s IP SANs when no servername is set', async () => {
    const b = await broker();
    const { product } = await sink({ all: { ca: pki.ca.cert } });
    expect(await echo(await product.attach(testConn(), BACKENDS[0]!, await tcp(b.port)), 'x')).toBe('x');
  });

  it('verify: false connects to a broker whose certificate it cannot check', async () => {
    const b = await broker();
    const { product, logs } = await sink({ backends: { emqx1: { ca: pki.otherCa.cert, verify: false } } });
    expect(logs.some((l) => l.msg === 'tls-upstream: broker certificates of these backends are NOT verified (verify: false)')).toBe(true);
    expect(await echo(await product.attach(testConn(), BACKENDS[0]!, await tcp(b.port)), 'y')).toBe('y');
  });

  it('presents the client certificate a broker requires', async () => {
    const b = await broker({ requireCert: true });
    const { product } = await sink({ all: { ca: pki.ca.cert, cert: pki.tetherClient.cert, key: pki.tetherClient.key } });
    expect(await echo(await product.attach(testConn(), BACKENDS[0]!, await tcp(b.port)), 'z')).toBe('z');
    expect(b.peers).toEqual(['CN=tether']);
  });

  it('gives up on a broker that never answers the handshake, within handshakeTimeout', async () => {
    const silent = await tcpServer(() => undefined);
    cleanups.push(() => silent.close());
    const { product } = await sink({ all: { ca: pki.ca.cert }, handshakeTimeout: '300ms' });
    await expect(product.attach(testConn(), BACKENDS[0]!, await tcp(silent.port))).rejects.toThrow('backend emqx1: TLS handshake with the broker not finished within 300 ms');
  });

  it('reloads its files on a configuration reload (SIGHUP, tether reload): new connections present the new client certificate; a bad reload keeps the old one', async () => {
    const b = await broker({ requireCert: true });
    const dir = mkdtempSync(join(pki.dir, 'upstream-live-'));
    const cert = join(dir, 'client.pem');
    const key = join(dir, 'client.key');
    copyFileSync(pki.tetherClient.cert, cert);
    copyFileSync(pki.tetherClient.key, key);
    const { product, logs, stats } = await sink({ all: { ca: pki.ca.cert, cert, key }, watch: false });
    const connectOnce = async (): Promise<void> => {
      expect(await echo(await product.attach(testConn(), BACKENDS[0]!, await tcp(b.port)), 'hello')).toBe('hello');
    };
    await connectOnce();
    copyFileSync(pki.device1.cert, cert);
    copyFileSync(pki.device1.key, key);
    await product.reload!();
    await connectOnce();
    copyFileSync(pki.beta.key, key);
    await product.reload!();
    await connectOnce();
    expect(b.peers).toEqual(['CN=tether', 'CN=device-1', 'CN=device-1']);
    expect(stats.get('tls_upstream_reloads')).toBe(1);
    expect(logs.filter((l) => l.msg === 'tls-upstream reload failed; keeping the certificates in use').map((l) => l.err)).toEqual([
      `backend emqx1: client certificate ${cert} with key ${key}: key values mismatch`,
    ]);
  });
});
