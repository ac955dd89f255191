import { PLUGIN_API_VERSION } from '@tether/core';
import { CertificateSet, type CertificateSource, type ContextSettings } from './certificate-set.ts';
import { defineTransport } from '@tether/core';
import { describeError } from './describe-error.ts';
import { check, checkKeys, checkString, duration, durationMs, filePath, stringList, tlsVersion, TLS_VERSIONS, VERIFY_MODES, type TlsVersion, type VerifyMode } from './options.ts';
import { Reloader, type ReloadTrigger } from './reloader.ts';
import { serverHandshake } from './server-handshake.ts';
import { tlsFacts } from './tls-facts.ts';

export interface TlsOptions {
  cert: string;
  key: string;
  certificates: { cert: string; key: string; servernames?: string[] }[];
  ca: string;
  verify: VerifyMode;
  strictSni: boolean;
  minVersion: TlsVersion;
  maxVersion: TlsVersion;
  ciphers: string;
  alpn: string[];
  handshakeTimeout: string | number;
  watch: boolean;
  watchDebounce: string | number;
}

const certificateList = (value: unknown): void => {
  check(Array.isArray(value), 'must be a list of { cert, key, servernames } objects');
  value.forEach((entry: unknown, i) => {
    checkKeys(entry, ['cert', 'key', 'servernames'], `[${i}]`);
    checkString(entry.cert, `[${i}].cert`, true);
    checkString(entry.key, `[${i}].key`, true);
    if (entry.servernames !== undefined) {
      try {
        stringList(entry.servernames);
      } catch (err) {
        throw new Error(`[${i}].servernames ${(err as Error).message}`);
      }
    }
  });
};

/**
 * TLS termination on a listener: certificates chosen by SNI, optional client certificates
 * (mutual TLS), a bounded handshake, reload with Tether's configuration reload (SIGHUP, tether reload) and on file change. Fills `facts.tls` for
 * the extractors and sinks that follow (`cert-cn` keys clients by their certificate).
 */
export const tlsTransport = defineTransport<TlsOptions>({
  name: 'tls',
  kind: 'transport',
  apiVersion: PLUGIN_API_VERSION,
  version: '0.1.0',
  description: 'TLS termination: certificates by SNI, mutual TLS, reload on configuration reload (SIGHUP) or file change.',
  options: {
    cert: { doc: 'Certificate file (PEM; the leaf first, then intermediates): the default certificate. Relative paths start in the directory Tether was started in.', format: String, default: '' },
    key: { doc: 'Private key file (PEM) of cert.', format: String, default: '' },
    certificates: { doc: 'More certificates, chosen by the SNI the client sends: a list of { cert, key, servernames? }; servernames defaults to the certificate\'s DNS names (or CN). Without cert, the first one is the default.', format: certificateList, default: [] },
    ca: { doc: 'CA bundle (PEM) that client certificates must chain to; required when verify is optional or required.', format: String, default: '' },
    verify: { doc: 'Client certificates: none (not asked for), optional (asked for; connections without a valid one are let in, unverified), required (a missing or invalid one is refused).', format: [...VERIFY_MODES], default: 'none' },
    strictSni: { doc: 'Refuse clients whose SNI matches no certificate, or who send none, instead of serving the default certificate.', format: Boolean, default: false },
    minVersion: { doc: 'Oldest TLS version accepted.', format: tlsVersion, default: 'TLSv1.2' },
    maxVersion: { doc: 'Newest TLS version accepted.', format: tlsVersion, default: 'TLSv1.3' },
    ciphers: { doc: 'OpenSSL cipher list (TLS 1.2 ciphers and TLS 1.3 suites); empty keeps Node\'s defaults.', format: String, default: '' },
    alpn: { doc: 'ALPN protocols to offer, in preference order (e.g. ["mqtt"]); empty negotiates none. A client that offers only others is refused.', format: stringList, default: [] },
    handshakeTimeout: { doc: 'Time a client has from connecting to a finished handshake.', format: duration, default: '10s' },
    watch: { doc: 'Reload when a certificate, key or CA file changes (a configuration reload, SIGHUP or tether reload, always reloads).', format: Boolean, default: true },
    watchDebounce: { doc: 'Quiet time after a file change before reloading, so a certificate and its key can both be written.', format: duration, default: '500ms' },
  },
  create(ctx, options) {
    const sources = certificateSources(options);
    const settings = contextSettings(options);
    let current = CertificateSet.load(sources, settings);
    const expiredNow = current.certificates.filter((c) => c.expired).map((c) => c.cert);
    if (expiredNow.length > 0) ctx.log.warn({ certificates: expiredNow }, 'TLS certificate has expired; clients will refuse it');
    ctx.log.info({ certificates: current.summary(), verify: options.verify }, 'TLS certificates loaded');

    const reload = (trigger: ReloadTrigger): void => {
      let next: CertificateSet;
      try {
        next = CertificateSet.load(sources, settings);
      } catch (err) {
        ctx.stats.inc('reload_failures');
        ctx.log.error({ trigger, err: describeError(err) }, 'TLS certificate reload failed; keeping the certificates in use');
        return;
      }
      // A file event in the directory that changed none of our files: nothing to say.
      if (trigger === 'file change' && next.digest === current.digest) return;
      current = next;
      ctx.stats.inc('reloads');
      ctx.log.info({ trigger, certificates: current.summary() }, 'TLS certificates reloaded; new handshakes use them');
    };
    const reloader = new Reloader({
      files: [...sources.flatMap((s) => [s.cert, s.key]), ...(settings.ca ? [settings.ca] : [])],
      watch: options.watch,
      debounceMs: durationMs(options.watchDebounce),
      signal: ctx.signal,
      reload,
      onWatchError: (dir, err) => ctx.log.warn({ dir, err: err.message }, 'cannot watch TLS files for changes; reload with SIGHUP or tether reload'),
    });

    const timeoutMs = durationMs(options.handshakeTimeout);
    const alpn = options.alpn.length > 0 ? options.alpn : undefined;
    const requested = options.verify !== 'none';
    return {
      async accept(socket, facts) {
        const tls = await serverHandshake(socket, { certificates: current, verify: options.verify, strictSni: options.strictSni, alpn, timeoutMs });
        facts.tls = tlsFacts(tls, requested);
        ctx.stats.inc('handshakes');
        return tls;
      },
      reload: () => reloader.reloadNow(),
      close: () => reloader.close(),
    };
  },
});

function certificateSources(options: TlsOptions): CertificateSource[] {
  check(Boolean(options.cert) === Boolean(options.key), 'cert and key go together: give both, or neither and use certificates');
  const sources: CertificateSource[] = [];
  if (options.cert) sources.push({ cert: filePath(options.cert), key: filePath(options.key) });
  for (const c of options.certificates) sources.push({ cert: filePath(c.cert), key: filePath(c.key), ...(c.servernames ? { servernames: c.servernames } : {}) });
  check(sources.length > 0, 'no certificate: set cert and key, or certificates');
  return sources;
}

function contextSettings(options: TlsOptions): ContextSettings {
  check(options.verify === 'none' || options.ca, `verify: ${options.verify} needs ca, the CA bundle client certificates must chain to`);
  check(options.verify !== 'none' || !options.ca, 'ca is set but verify is none, so client certificates would never be asked for: set verify to optional or required, or remove ca');
  check(TLS_VERSIONS.indexOf(options.minVersion) <= TLS_VERSIONS.indexOf(options.maxVersion), `minVersion ${options.minVersion} is newer than maxVersion ${options.maxVersion}`);
  return {
    ca: options.ca ? filePath(options.ca) : undefined,
    minVersion: options.minVersion,
    maxVersion: options.maxVersion,
    ciphers: options.ciphers || undefined,
  };
}
