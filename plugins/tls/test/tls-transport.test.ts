import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect as tcpConnect, type Socket } from 'node:net';
import { join } from 'node:path';
import { connect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { skipReason } from '../../../test/harness/binaries.ts';
import { createTestPki, type CertFiles, type TestPki } from '../../../test/harness/tls-certs.ts';
import type { Transport } from '@tether/core';
import { tlsTransport } from '../src/tls-transport.ts';
import { closed, make, transportServer, within, type Accepted } from './helpers.ts';

/**
 * The `tls` transport against Node's own TLS client, over real loopback sockets: what is served,
 * what the facts say, and the reason for each refusal.
 */

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

async function listener(options: Record<string, unknown>): Promise<{ port: number; next(): Promise<Accepted>; transport: Transport; logs: Record<string, unknown>[] }> {
  const made = await make<Transport>(tlsTransport, { cert: pki.alpha.cert, key: pki.alpha.key, ...options });
  cleanups.push(() => made.product.close?.());
  const server = await transportServer(made.product);
  cleanups.push(() => server.close());
  return { port: server.port, next: server.next, transport: made.product, logs: made.logs };
}

/** Node's TLS client; resolves on secureConnect, or with the error / early close. */
function client(port: number, options: ConnectionOptions = {}): Promise<{ socket: TLSSocket; error?: Error }> {
  return within(new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port, ca: pem(pki.ca.cert), servername: 'alpha.test', ...options });
    cleanups.push(() => socket.destroy());
    socket.once('secureConnect', () => resolve({ socket }));
    socket.once('error', (error) => resolve({ socket, error }));
    socket.once('close', () => resolve({ socket, error: new Error('closed') }));
  }), 'the TLS client');
}

const clientCert = (c: CertFiles): ConnectionOptions => ({ cert: pem(c.cert), key: pem(c.key) });

function refused(outcome: Accepted): { reason: string; message: string; code: string } {
  if (outcome.ok) throw new Error('the connection was accepted');
  return { reason: outcome.error.reason, message: outcome.error.message, code: outcome.error.code };
}

function accepted(outcome: Accepted): Extract<Accepted, { ok: true }> {
  if (!outcome.ok) throw new Error(`refused: ${outcome.error.message}`);
  return outcome;
}

describe.skipIf(missing !== '')(`tls transport${missing}`, () => {
  describe('options', () => {
    it('refuses cert without key, verify without ca, ca without verify, minVersion above maxVersion', async () => {
      await expect(make(tlsTransport, { cert: pki.alpha.cert })).rejects.toThrow(/cert and key go together/);
      await expect(make(tlsTransport, { cert: pki.alpha.cert, key: pki.alpha.key, verify: 'required' })).rejects.toThrow(/verify: required needs ca/);
      await expect(make(tlsTransport, { cert: pki.alpha.cert, key: pki.alpha.key, ca: pki.ca.cert })).rejects.toThrow(/ca is set but verify is none/);
      await expect(make(tlsTransport, { cert: pki.alpha.cert, key: pki.alpha.key, minVersion: 'TLSv1.3', maxVersion: 'TLSv1.2' })).rejects.toThrow(/minVersion TLSv1.3 is newer than maxVersion TLSv1.2/);
      await expect(make(tlsTransport, {})).rejects.toThrow(/no certificate/);
    });

    it('refuses malformed options through its schema', async () => {
      await expect(make(tlsTransport, { certificates: [{ cert: 'a.pem' }] })).rejects.toThrow(/certificates: \[0\]\.key must be a non-empty string/);
      await expect(make(tlsTransport, { certificates: [{ cert: 'a.pem', key: 'a.key', names: [] }] })).rejects.toThrow(/unknown keys: names/);
      await expect(make(tlsTransport, { verify: 'maybe' })).rejects.toThrow(/verify/);
      await expect(make(tlsTransport, { handshakeTimeout: 'soon' })).rejects.toThrow(/handshakeTimeout: must be a duration/);
    });

    it('names the files when a key does not match its certificate, a file is missing or is not PEM', async () => {
      await expect(make(tlsTransport, { cert: pki.alpha.cert, key: pki.beta.key })).rejects.toThrow(`certificate ${pki.alpha.cert} with key ${pki.beta.key}: key values mismatch`);
      await expect(make(tlsTransport, { cert: join(pki.dir, 'nope.pem'), key: pki.alpha.key })).rejects.toThrow(`certificate ${join(pki.dir, 'nope.pem')} cannot be read: no such file`);
      const junk = join(pki.dir, 'junk.pem');
      writeFileSync(junk, 'not a certificate\n');
      await expect(make(tlsTransport, { cert: junk, key: pki.alpha.key })).rejects.toThrow(`certificate ${junk} is not a PEM file`);
    });
  });

  describe('handshake and facts', () => {
    it('serves the default certificate and fills facts.tls', async () => {
      const l = await listener({ alpn: ['mqtt'] });
      const c = await client(l.port, { ALPNProtocols: ['mqtt'] });
      expect(c.error).toBeUndefined();
      const { facts } = accepted(await l.next());
      expect(c.socket.getPeerX509Certificate()!.serialNumber.toUpperCase()).toBe(pki.alpha.serial);
      expect(facts.tls).toEqual({
        protocol: 'TLSv1.3', cipher: expect.stringMatching(/^TLS_/), servername: 'alpha.test', alpn: 'mqtt',
        peerCN: undefined, peerSAN: [], verified: false, verifyError: undefined,
      });
    });

    it('passes bytes both ways once the handshake is done', async () => {
      const l = await listener({});
      const c = await client(l.port);
      const { socket } = accepted(await l.next());
      const got = new Promise<string>((resolve) => socket.once('data', (d: Buffer) => resolve(d.toString())));
      c.socket.write('ping');
      expect(await within(got, 'bytes at the server')).toBe('ping');
      const back = new Promise<string>((resolve) => c.socket.once('data', (d: Buffer) => resolve(d.toString())));
      socket.write('pong');
      expect(await within(back, 'bytes at the client')).toBe('pong');
    });

    it('chooses the certificate by SNI, from its SANs or from servernames', async () => {
      const l = await listener({ certificates: [{ cert: pki.beta.cert, key: pki.beta.key }, { cert: pki.beta.cert, key: pki.beta.key, servernames: ['*.wild.test'] }] });
      const served = async (servername: string | undefined): Promise<string> => {
        const c = await client(l.port, servername ? { servername, checkServerIdentity: () => undefined } : { servername: '', checkServerIdentity: () => undefined });
        expect(c.error).toBeUndefined();
        accepted(await l.next());
        return c.socket.getPeerX509Certificate()!.serialNumber.toUpperCase();
      };
      expect(await served('beta.test')).toBe(pki.beta.serial);
      expect(await served('BETA.test')).toBe(pki.beta.serial);
      expect(await served('x.wild.test')).toBe(pki.beta.serial);
      expect(await served('alpha.test')).toBe(pki.alpha.serial);
      expect(await served('unknown.test')).toBe(pki.alpha.serial); // not strict: the default
      expect(await served(undefined)).toBe(pki.alpha.serial);
    });

    it('strictSni refuses an unknown name and a client without SNI', async () => {
      const l = await listener({ strictSni: true });
      await client(l.port, { servername: 'unknown.test' });
      expect(refused(await l.next())).toMatchObject({ reason: 'tls_unknown_sni', message: 'no certificate for server name "unknown.test" (strictSni)' });
      await client(l.port, { servername: '' });
      expect(refused(await l.next())).toMatchObject({ reason: 'tls_unknown_sni', message: 'the client sent no server name (SNI) and strictSni is on' });
      const ok = await client(l.port, { servername: 'localhost' });
      expect(ok.error).toBeUndefined();
      expect(accepted(await l.next()).facts.tls?.servername).toBe('localhost');
    });

    it('refuses a client whose TLS versions are all below minVersion', async () => {
      const l = await listener({ minVersion: 'TLSv1.3' });
      await client(l.port, { maxVersion: 'TLSv1.2' });
      const r = refused(await l.next());
      expect(r.reason).toBe('tls_handshake_failed');
      expect(r.message).toMatch(/^TLS handshake failed: unsupported protocol/);
    });

    it('refuses a client that offers ALPN but none of the listener\'s protocols', async () => {
      const l = await listener({ alpn: ['mqtt'] });
      await client(l.port, { ALPNProtocols: ['http/1.1'] });
      const r = refused(await l.next());
      expect(r.reason).toBe('tls_handshake_failed');
      expect(r.message).toMatch(/no application protocol/);
      // A client that offers no ALPN at all is let in, with none negotiated.
      const plain = await client(l.port);
      expect(plain.error).toBeUndefined();
      expect(accepted(await l.next()).facts.tls?.alpn).toBeUndefined();
    });
  });

  describe('not TLS, or not in time', () => {
    it('recognises plaintext MQTT at its first byte, long before the handshake timeout', async () => {
      const l = await listener({ handshakeTimeout: '60s' });
      const raw = tcpConnect({ host: '127.0.0.1', port: l.port });
      cleanups.push(() => raw.destroy());
      raw.write(Buffer.from([0x10, 0x0c, 0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x04, 0x02, 0x00, 0x3c, 0x00, 0x00]));
      const started = Date.now();
      const r = refused(await within(l.next(), 'the refusal', 5000));
      expect(Date.now() - started).toBeLessThan(5000);
      expect(r).toMatchObject({ reason: 'tls_plaintext', code: 'TETHER_ERR_TLS_PLAINTEXT' });
      expect(r.message).toBe('plaintext MQTT (a CONNECT packet) on a TLS listener; use TLS (mqtts) on this port, or the plain listener');
      await within(closed(raw), 'the plaintext client to be disconnected');
    });

    it('names other first bytes (an HTTP request)', async () => {
      const l = await listener({});
      const raw = tcpConnect({ host: '127.0.0.1', port: l.port });
      cleanups.push(() => raw.destroy());
      raw.write('GET / HTTP/1.1\r\n\r\n');
      expect(refused(await l.next()).message).toMatch(/^first byte 0x47, not a TLS handshake record/);
    });

    it('times out a client that sends nothing, and one that stops inside its ClientHello', async () => {
      const l = await listener({ handshakeTimeout: '300ms' });
      const silent = tcpConnect({ host: '127.0.0.1', port: l.port });
      cleanups.push(() => silent.destroy());
      expect(refused(await l.next())).toMatchObject({ reason: 'tls_handshake_timeout', message: 'TLS handshake not finished within 300 ms (no data from the client)' });
      await within(closed(silent), 'the silent client to be disconnected');

      const partial = tcpConnect({ host: '127.0.0.1', port: l.port });
      cleanups.push(() => partial.destroy());
      partial.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01]));
      expect(refused(await l.next())).toMatchObject({ reason: 'tls_handshake_timeout', message: 'TLS handshake not finished within 300 ms (ClientHello received, handshake incomplete)' });
    });

    it('reports a client that leaves before sending anything as closed early', async () => {
      const l = await listener({});
      const raw = tcpConnect({ host: '127.0.0.1', port: l.port }, () => raw.end());
      cleanups.push(() => raw.destroy());
      expect(refused(await l.next())).toMatchObject({ reason: 'client_closed_early' });
    });

    it('closes a connection whose client sends a corrupt record after the handshake', async () => {
      const l = await listener({});
      const raw = tcpConnect({ host: '127.0.0.1', port: l.port });
      cleanups.push(() => raw.destroy());
      const c = connect({ socket: raw as Socket, ca: pem(pki.ca.cert), servername: 'alpha.test' });
      c.on('error', () => undefined);
      cleanups.push(() => c.destroy());
      const { socket } = accepted(await l.next());
      // An application-data record the server cannot decrypt, written under the TLS layer.
      raw.write(Buffer.from([0x17, 0x03, 0x03, 0x00, 0x20, ...Array<number>(32).fill(7)]));
      await within(closed(socket), 'the server side to close the broken connection');
    });
  });

  describe('client certificates', () => {
    it('verify: required lets a valid certificate in and fills the peer facts', async () => {
      const l = await listener({ ca: pki.ca.cert, verify: 'required' });
      const c = await client(l.port, clientCert(pki.device1));
      expect(c.error).toBeUndefined();
      expect(accepted(await l.next()).facts.tls).toMatchObject({
        peerCN: 'device-1',
        peerSAN: ['DNS:device-1.devices.test', 'email:device-1@devices.test', 'URI:urn:device:device-1'],
        verified: true,
        verifyError: undefined,
      });
    });

    it('verify: required refuses a missing, an expired and a foreign certificate, with OpenSSL\'s reason', async () => {
      const l = await listener({ ca: pki.ca.cert, verify: 'required' });
      await client(l.port);
      expect(refused(await l.next())).toMatchObject({ reason: 'tls_bad_client_cert', message: 'client certificate rejected: the client sent no certificate and verify is required' });
      await client(l.port, clientCert(pki.expired));
      expect(refused(await l.next())).toMatchObject({ reason: 'tls_bad_client_cert', message: 'client certificate rejected: CN=device-expired: CERT_HAS_EXPIRED (certificate has expired)' });
      await client(l.port, clientCert(pki.foreign));
      const foreign = refused(await l.next());
      expect(foreign.reason).toBe('tls_bad_client_cert');
      expect(foreign.message).toMatch(/^client certificate rejected: CN=device-foreign: UNABLE_TO_VERIFY_LEAF_SIGNATURE/);
    });

    it('verify: optional lets every client in and says in the facts who verified', async () => {
      const l = await listener({ ca: pki.ca.cert, verify: 'optional' });
      await client(l.port);
      expect(accepted(await l.next()).facts.tls).toMatchObject({ peerCN: undefined, verified: false, verifyError: undefined });
      await client(l.port, clientCert(pki.expired));
      expect(accepted(await l.next()).facts.tls).toMatchObject({ peerCN: 'device-expired', verified: false, verifyError: 'CERT_HAS_EXPIRED' });
      await client(l.port, clientCert(pki.device2));
      expect(accepted(await l.next()).facts.tls).toMatchObject({ peerCN: 'device-2', verified: true, verifyError: undefined });
    });
  });

  describe('reload', () => {
    it('on a configuration reload (SIGHUP, tether reload) serves new certificates to new handshakes; a failed reload keeps the old ones and says why', async () => {
      const dir = join(pki.dir, 'reload-sighup');
      mkdirSync(dir);
      const cert = join(dir, 'server.pem');
      const key = join(dir, 'server.key');
      copyFileSync(pki.alpha.cert, cert);
      copyFileSync(pki.alpha.key, key);
      const l = await listener({ cert, key, watch: false });
      const served = async (): Promise<string> => {
        const c = await client(l.port);
        expect(c.error).toBeUndefined();
        accepted(await l.next());
        return c.socket.getPeerX509Certificate()!.serialNumber.toUpperCase();
      };
      expect(await served()).toBe(pki.alpha.serial);

      copyFileSync(pki.alphaNext.cert, cert);
      copyFileSync(pki.alphaNext.key, key);
      await l.transport.reload!();
      expect(l.logs.filter((line) => line.msg === 'TLS certificates reloaded; new handshakes use them')).toHaveLength(1);
      expect(await served()).toBe(pki.alphaNext.serial);

      copyFileSync(pki.beta.key, key); // no longer the certificate's key
      await l.transport.reload!();
      const failure = l.logs.filter((line) => line.msg === 'TLS certificate reload failed; keeping the certificates in use');
      expect(failure).toHaveLength(1);
      expect(failure[0]).toMatchObject({ level: 50, trigger: 'reload', err: `certificate ${cert} with key ${key}: key values mismatch` });
      expect(await served()).toBe(pki.alphaNext.serial);
    });

    it('leaves SIGHUP to Tether (which reloads the whole configuration), and reloads nothing once retired', async () => {
      const before = process.listenerCount('SIGHUP');
      const made = await make<Transport>(tlsTransport, { cert: pki.alpha.cert, key: pki.alpha.key });
      expect(process.listenerCount('SIGHUP')).toBe(before);
      made.lifetime.abort();
      await made.product.reload!();
      expect(made.logs.filter((line) => /reload/.test(String(line.msg)))).toEqual([]);
    });
  });
});
