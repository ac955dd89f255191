import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** One certificate and its key, as files, plus what a test compares against. */
export interface CertFiles {
  readonly cert: string;
  readonly key: string;
  /** SHA-256 fingerprint as Node prints it (`AB:CD:...`), to tell which certificate was served. */
  readonly fingerprint256: string;
  /** The serial number in upper-case hex, as `openssl x509 -serial` and Node print it. */
  readonly serial: string;
}

/**
 * A throw-away PKI for one test suite, made with Debian's openssl in a temp directory:
 *
 * - `ca` signs everything below; `otherCa` is an unrelated CA (for "a client cert from another CA").
 * - `alpha` serves `alpha.test` (and `localhost`, `127.0.0.1`); `beta` serves `beta.test`; both
 *   carry the SANs the SNI selection reads.
 * - `alphaNext` is a new certificate for the same names as `alpha` (a rotation: another key, another
 *   serial), for the reload tests.
 * - `device1`, `device2`: client certificates (CN `device-1` / `device-2`, with DNS, email and
 *   URI SANs); `expired`: a client certificate of `ca` whose validity ended in 2020;
 *   `foreign`: a client certificate signed by `otherCa`.
 * - `tetherClient`: the certificate Tether presents to a broker that requires one.
 *
 * EC P-256 keys: generating them is instant, where RSA would cost seconds on a slow machine.
 */
export interface TestPki {
  readonly dir: string;
  readonly ca: CertFiles;
  readonly otherCa: CertFiles;
  readonly alpha: CertFiles;
  readonly alphaNext: CertFiles;
  readonly beta: CertFiles;
  readonly device1: CertFiles;
  readonly device2: CertFiles;
  readonly expired: CertFiles;
  readonly foreign: CertFiles;
  readonly tetherClient: CertFiles;
  /** Removes the directory. */
  remove(): void;
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

export async function createTestPki(): Promise<TestPki> {
  const dir = mkdtempSync(join(tmpdir(), 'tether-tls-'));
  try {
    const ca = await makeCa(dir, 'ca', 'Tether Test CA');
    const otherCa = await makeCa(dir, 'other-ca', 'Some Other CA');
    const server = (names: string[]): string => `basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=${names.join(',')}\n`;
    const client = (cn: string): string =>
      `basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\nsubjectAltName=DNS:${cn}.devices.test,email:${cn}@devices.test,URI:urn:device:${cn}\n`;
    const alphaNames = ['DNS:alpha.test', 'DNS:localhost', 'IP:127.0.0.1'];
    return {
      dir,
      ca,
      otherCa,
      alpha: await makeLeaf(dir, 'alpha', 'alpha.test', ca, server(alphaNames)),
      alphaNext: await makeLeaf(dir, 'alpha-next', 'alpha.test', ca, server(alphaNames)),
      beta: await makeLeaf(dir, 'beta', 'beta.test', ca, server(['DNS:beta.test'])),
      device1: await makeLeaf(dir, 'device1', 'device-1', ca, client('device-1')),
      device2: await makeLeaf(dir, 'device2', 'device-2', ca, client('device-2')),
      expired: await makeExpiredLeaf(dir, 'expired', 'device-expired', ca, client('device-expired')),
      foreign: await makeLeaf(dir, 'foreign', 'device-foreign', otherCa, client('device-foreign')),
      tetherClient: await makeLeaf(dir, 'tether-client', 'tether', ca, client('tether')),
      remove: () => rmSync(dir, { recursive: true, force: true }),
    };
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

async function makeCa(dir: string, name: string, cn: string): Promise<CertFiles> {
  const cert = join(dir, `${name}.pem`);
  const key = join(dir, `${name}.key`);
  await openssl(['req', '-x509', ...EC, '-keyout', key, '-out', cert, '-days', '3650', '-subj', `/CN=${cn}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  return describeFiles(cert, key);
}

async function makeLeaf(dir: string, name: string, cn: string, ca: CertFiles, extensions: string): Promise<CertFiles> {
  const { csr, key, ext } = await request(dir, name, cn, extensions);
  const cert = join(dir, `${name}.pem`);
  await openssl(['x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-set_serial', randomSerial(), '-days', '365', '-sha256', '-extfile', ext, '-out', cert]);
  return describeFiles(cert, key);
}

/**
 * A certificate whose validity lies in the past. OpenSSL 3.0's `x509` and `req` cannot set the
 * start date (`-not_before` came in 3.4), but `openssl ca` can (`-startdate`/`-enddate`); it
 * needs a small CA directory (database, serial), made here.
 */
async function makeExpiredLeaf(dir: string, name: string, cn: string, ca: CertFiles, extensions: string): Promise<CertFiles> {
  const { csr, key, ext } = await request(dir, name, cn, extensions);
  const caDir = join(dir, `${name}-ca-db`);
  mkdirSync(caDir);
  writeFileSync(join(caDir, 'index.txt'), '');
  writeFileSync(join(caDir, 'serial'), `${randomSerial().slice(2)}\n`);
  const conf = join(caDir, 'ca.cnf');
  writeFileSync(conf, [
    '[ca]', 'default_ca = test_ca',
    '[test_ca]', `database = ${join(caDir, 'index.txt')}`, `serial = ${join(caDir, 'serial')}`, `new_certs_dir = ${caDir}`,
    'default_md = sha256', 'policy = any_name', 'unique_subject = no', 'copy_extensions = none',
    '[any_name]', 'commonName = supplied', '',
  ].join('\n'));
  const cert = join(dir, `${name}.pem`);
  await openssl(['ca', '-batch', '-notext', '-config', conf, '-cert', ca.cert, '-keyfile', ca.key, '-in', csr, '-out', cert,
    '-startdate', '20200101000000Z', '-enddate', '20200201000000Z', '-extfile', ext]);
  return describeFiles(cert, key);
}

async function request(dir: string, name: string, cn: string, extensions: string): Promise<{ csr: string; key: string; ext: string }> {
  const key = join(dir, `${name}.key`);
  const csr = join(dir, `${name}.csr`);
  const ext = join(dir, `${name}.ext`);
  writeFileSync(ext, extensions);
  await openssl(['req', '-new', ...EC, '-keyout', key, '-out', csr, '-subj', `/CN=${cn}`]);
  return { csr, key, ext };
}

function describeFiles(cert: string, key: string): CertFiles {
  const x509 = new X509Certificate(readFileSync(cert));
  return { cert, key, fingerprint256: x509.fingerprint256, serial: x509.serialNumber.toUpperCase() };
}

/** 64 random bits, positive: two certificates for one name must differ in serial. */
function randomSerial(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(8));
  bytes[0] = (bytes[0]! & 0x7f) | 0x10;
  return `0x${Buffer.from(bytes).toString('hex')}`;
}

async function openssl(args: string[]): Promise<void> {
  try {
    await run('openssl', args, { timeout: 30_000 });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`openssl ${args.join(' ')} failed: ${e.stderr || e.message}`);
  }
}
