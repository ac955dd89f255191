import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A throwaway CA with a server certificate (for HAProxy's `crt`) and a client certificate. */
export interface TestPki {
  readonly dir: string;
  /** The CA certificate file (HAProxy `ca-file`) and its PEM. */
  readonly caFile: string;
  readonly ca: Buffer;
  /** Server certificate and key in one PEM file, as HAProxy's `crt` wants; valid for localhost, broker.test, 127.0.0.1. */
  readonly serverPemFile: string;
  /** The same certificate and key as two files (Tether's tls transport: `cert`, `key`). */
  readonly serverCertFile: string;
  readonly serverKeyFile: string;
  /** The client certificate (CN = clientCN) and its key, for tls.connect. */
  readonly clientCert: Buffer;
  readonly clientKey: Buffer;
  readonly clientCN: string;
  close(): void;
}

/**
 * Makes the certificates with Debian's openssl CLI (Node can sign nothing itself): EC P-256
 * keys, so generating them takes milliseconds even on a loaded machine.
 */
export function makeTestPki(clientCN = 'device-42'): TestPki {
  const dir = mkdtempSync(join(tmpdir(), 'tether-pki-'));
  const at = (name: string): string => join(dir, name);
  const openssl = (...args: string[]): void => void execFileSync('openssl', args, { cwd: dir, stdio: 'pipe', timeout: 20_000 });
  const key = (name: string): void => openssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', at(name));
  try {
    key('ca.key');
    openssl('req', '-x509', '-new', '-key', at('ca.key'), '-out', at('ca.crt'), '-days', '2', '-subj', '/CN=Tether test CA');
    const issue = (name: string, subject: string, extensions: string): void => {
      key(`${name}.key`);
      openssl('req', '-new', '-key', at(`${name}.key`), '-out', at(`${name}.csr`), '-subj', subject);
      writeFileSync(at(`${name}.ext`), extensions);
      openssl('x509', '-req', '-in', at(`${name}.csr`), '-CA', at('ca.crt'), '-CAkey', at('ca.key'), '-CAcreateserial', '-out', at(`${name}.crt`), '-days', '2', '-extfile', at(`${name}.ext`));
    };
    issue('server', '/CN=localhost', 'subjectAltName=DNS:localhost,DNS:broker.test,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
    issue('client', `/CN=${clientCN}`, 'extendedKeyUsage=clientAuth\n');
    writeFileSync(at('server.pem'), Buffer.concat([readFileSync(at('server.crt')), readFileSync(at('server.key'))]));
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    dir,
    caFile: at('ca.crt'),
    ca: readFileSync(at('ca.crt')),
    serverPemFile: at('server.pem'),
    serverCertFile: at('server.crt'),
    serverKeyFile: at('server.key'),
    clientCert: readFileSync(at('client.crt')),
    clientKey: readFileSync(at('client.key')),
    clientCN,
    close: () => rmSync(dir, { recursive: true, force: true }),
  };
}
