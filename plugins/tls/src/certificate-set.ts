import { constants } from 'node:crypto';
import { createSecureContext, type SecureContext } from 'node:tls';
import { serverNamesOf } from './certificate-names.ts';
import type { TlsVersion } from './options.ts';
import { opensslReason, PemFiles } from './pem-files.ts';
import { ServerNameIndex } from './server-name-index.ts';

/** One certificate of a listener, as configured: absolute file paths and optional SNI names. */
export interface CertificateSource {
  readonly cert: string;
  readonly key: string;
  /** Names to serve it for; when absent, the certificate's own DNS names (or CN). */
  readonly servernames?: readonly string[];
}

/** What every context of a listener shares. */
export interface ContextSettings {
  /** CA bundle for client certificates, if client certificates are requested. */
  readonly ca: string | undefined;
  readonly minVersion: TlsVersion;
  readonly maxVersion: TlsVersion;
  /** OpenSSL cipher list; undefined keeps Node's defaults. */
  readonly ciphers: string | undefined;
}

export interface LoadedCertificate {
  readonly cert: string;
  readonly names: readonly string[];
  readonly subject: string;
  readonly serial: string;
  readonly fingerprint256: string;
  readonly validTo: string;
  readonly expired: boolean;
  readonly context: SecureContext;
}

/**
 * The certificates of one TLS listener, loaded and checked as a whole: every file read, every
 * key matched to its certificate (createSecureContext refuses a mismatch), one secure context per
 * certificate. Immutable: a reload builds a new set and swaps it in only when all of it loaded,
 * so a bad file never leaves a listener half-updated. Handshakes in progress keep the set they
 * started with; established connections never look at it again.
 */
export class CertificateSet {
  /** The first is the default: served without SNI, or for a name no certificate claims. */
  readonly certificates: readonly LoadedCertificate[];
  /** Changes when any file's content changes. */
  readonly digest: string;
  readonly #byName: ServerNameIndex<LoadedCertificate>;

  private constructor(certificates: LoadedCertificate[], byName: ServerNameIndex<LoadedCertificate>, digest: string) {
    this.certificates = certificates;
    this.#byName = byName;
    this.digest = digest;
  }

  static load(sources: readonly CertificateSource[], settings: ContextSettings, now = Date.now()): CertificateSet {
    if (sources.length === 0) throw new Error('no certificate configured');
    const files = new PemFiles();
    const ca = settings.ca === undefined ? undefined : files.read(settings.ca, 'CA bundle');
    const byName = new ServerNameIndex<LoadedCertificate>();
    const loaded = sources.map((source) => {
      const { pem, x509 } = files.certificate(source.cert, 'certificate');
      const key = files.read(source.key, 'key');
      let context: SecureContext;
      try {
        context = createSecureContext({
          cert: pem,
          key,
          ...(ca ? { ca } : {}),
          minVersion: settings.minVersion,
          maxVersion: settings.maxVersion,
          ...(settings.ciphers ? { ciphers: settings.ciphers } : {}),
          // What tls.Server does: the server's cipher preference wins, and sessions resumed
          // with a client certificate stay bound to this application.
          honorCipherOrder: true,
          sessionIdContext: 'tether-tls',
          // MQTT never renegotiates, and a client-initiated renegotiation costs the server a
          // handshake each time: refuse it in OpenSSL.
          secureOptions: constants.SSL_OP_NO_RENEGOTIATION,
        });
      } catch (err) {
        throw new Error(`certificate ${source.cert} with key ${source.key}: ${opensslReason(err)}`);
      }
      const names = source.servernames?.length ? source.servernames.map((n) => n.toLowerCase()) : serverNamesOf(x509);
      const certificate: LoadedCertificate = {
        cert: source.cert,
        names,
        subject: x509.subject.replace(/\n/g, ', '),
        serial: x509.serialNumber.toUpperCase(),
        fingerprint256: x509.fingerprint256,
        validTo: new Date(x509.validTo).toISOString(),
        expired: new Date(x509.validTo).getTime() < now,
        context,
      };
      for (const name of names) byName.add(name, certificate);
      return certificate;
    });
    return new CertificateSet(loaded, byName, files.digest());
  }

  get default(): LoadedCertificate {
    return this.certificates[0]!;
  }

  /** The certificate for a server name, or undefined when none claims it. */
  lookup(servername: string): LoadedCertificate | undefined {
    return this.#byName.find(servername);
  }

  /** For log lines: which certificate serves which names, until when. */
  summary(): { cert: string; names: readonly string[]; serial: string; validTo: string }[] {
    return this.certificates.map(({ cert, names, serial, validTo }) => ({ cert, names, serial, validTo }));
  }
}
