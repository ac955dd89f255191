import { createSecureContext, type SecureContext } from 'node:tls';
import type { TlsVersion } from './options.ts';
import { opensslReason, PemFiles } from './pem-files.ts';

/** How Tether speaks TLS to one backend: files as absolute paths, defaults filled in. */
export interface UpstreamSettings {
  /** CA bundle the broker's certificate must chain to; undefined uses Node's public root CAs. */
  readonly ca: string | undefined;
  /** Client certificate and key, for brokers that require one. */
  readonly cert: string | undefined;
  readonly key: string | undefined;
  /** SNI sent and the name the broker certificate must carry; undefined: the backend's host. */
  readonly servername: string | undefined;
  /** Verify the broker's certificate and name. */
  readonly verify: boolean;
  readonly minVersion: TlsVersion;
  readonly maxVersion: TlsVersion;
  readonly ciphers: string | undefined;
  readonly alpn: readonly string[] | undefined;
}

export interface UpstreamTls {
  readonly settings: UpstreamSettings;
  readonly context: SecureContext;
}

/**
 * The TLS contexts towards the backends, loaded as a whole (a reload swaps in a complete new
 * set or nothing, like the listener's certificates). Backends without settings are plain TCP.
 */
export class UpstreamContexts {
  readonly digest: string;
  readonly #byBackend: ReadonlyMap<string, UpstreamTls>;

  private constructor(byBackend: Map<string, UpstreamTls>, digest: string) {
    this.#byBackend = byBackend;
    this.digest = digest;
  }

  static load(settings: ReadonlyMap<string, UpstreamSettings>): UpstreamContexts {
    const files = new PemFiles();
    // Backends that share settings (all of them, under `all`) share one context.
    const shared = new Map<string, SecureContext>();
    const byBackend = new Map<string, UpstreamTls>();
    for (const [backend, s] of settings) {
      const id = JSON.stringify([s.ca, s.cert, s.key, s.minVersion, s.maxVersion, s.ciphers]);
      let context = shared.get(id);
      if (!context) {
        const ca = s.ca ? files.read(s.ca, 'CA bundle') : undefined;
        const cert = s.cert ? files.read(s.cert, 'client certificate') : undefined;
        const key = s.key ? files.read(s.key, 'client key') : undefined;
        try {
          context = createSecureContext({
            ...(ca ? { ca } : {}),
            ...(cert && key ? { cert, key } : {}),
            minVersion: s.minVersion,
            maxVersion: s.maxVersion,
            ...(s.ciphers ? { ciphers: s.ciphers } : {}),
          });
        } catch (err) {
          throw new Error(`backend ${backend}: ${s.cert ? `client certificate ${s.cert} with key ${s.key}: ` : ''}${opensslReason(err)}`);
        }
        shared.set(id, context);
      }
      byBackend.set(backend, { settings: s, context });
    }
    return new UpstreamContexts(byBackend, files.digest());
  }

  /** The TLS settings for a backend, or undefined for plain TCP. */
  get(backend: string): UpstreamTls | undefined {
    return this.#byBackend.get(backend);
  }

  get size(): number {
    return this.#byBackend.size;
  }

  files(): string[] {
    return [...new Set([...this.#byBackend.values()].flatMap(({ settings: s }) => [s.ca, s.cert, s.key].filter((f): f is string => f !== undefined)))];
  }
}
