import { defineSink, PLUGIN_API_VERSION, type Backend } from '@tether/core';
import { clientHandshake } from './client-handshake.ts';
import { describeError } from './describe-error.ts';
import { check, checkKeys, checkString, duration, durationMs, filePath, stringList, TLS_VERSIONS, type TlsVersion } from './options.ts';
import { Reloader, type ReloadTrigger } from './reloader.ts';
import { UpstreamContexts, type UpstreamSettings } from './upstream-contexts.ts';

/** TLS settings towards a backend as written in the options; every field optional. */
export interface UpstreamEntry {
  ca?: string;
  cert?: string;
  key?: string;
  servername?: string;
  verify?: boolean;
  minVersion?: TlsVersion;
  maxVersion?: TlsVersion;
  ciphers?: string;
  alpn?: string[];
}

export interface TlsUpstreamOptions {
  all: UpstreamEntry | null;
  backends: Record<string, UpstreamEntry | false>;
  handshakeTimeout: string | number;
  watch: boolean;
  watchDebounce: string | number;
}

const ENTRY_KEYS = ['ca', 'cert', 'key', 'servername', 'verify', 'minVersion', 'maxVersion', 'ciphers', 'alpn'] as const;

function checkEntry(entry: unknown, at: string): void {
  checkKeys(entry, ENTRY_KEYS, at);
  for (const k of ['ca', 'cert', 'key', 'servername', 'ciphers'] as const) checkString(entry[k], `${at}.${k}`);
  check(entry.verify === undefined || typeof entry.verify === 'boolean', `${at}.verify must be true or false`);
  for (const k of ['minVersion', 'maxVersion'] as const) {
    check(entry[k] === undefined || TLS_VERSIONS.includes(entry[k] as TlsVersion), `${at}.${k} must be one of ${TLS_VERSIONS.join(', ')}`);
  }
  if (entry.alpn !== undefined) {
    try {
      stringList(entry.alpn);
    } catch (err) {
      throw new Error(`${at}.alpn ${(err as Error).message}`);
    }
  }
  check((entry.cert === undefined) === (entry.key === undefined), `${at}: cert and key go together`);
}

/**
 * Re-encryption towards the brokers: wraps the upstream connection of the backends it is
 * configured for in TLS and waits for the handshake before the client's CONNECT is replayed.
 * Verifies the broker's certificate by default. In `sinks`, put it after `proxy-protocol`: a
 * PROXY header goes before the TLS handshake, in the clear, as brokers expect it.
 */
export const tlsUpstream = defineSink<TlsUpstreamOptions>({
  name: 'tls-upstream',
  kind: 'sink',
  apiVersion: PLUGIN_API_VERSION,
  version: '0.1.0',
  description: 'TLS towards the brokers (re-encryption), per backend: CA, server name, client certificate.',
  options: {
    all: {
      doc: 'TLS settings for every backend: { ca, cert, key, servername, verify, minVersion, maxVersion, ciphers, alpn }, all optional ({} is TLS with Node\'s public CAs). null: only the backends listed in backends use TLS.',
      format: (value: unknown) => value === null || checkEntry(value, 'all'),
      default: null,
    },
    backends: {
      doc: 'Per backend name: its TLS settings (merged over all), or false for plain TCP.',
      // Object makes convict take the mapping whole: with a format function it would try to read
      // the backend names as options of its own. The entries are checked in create().
      format: Object,
      default: {},
    },
    handshakeTimeout: { doc: 'Time the TLS handshake with a broker may take.', format: duration, default: '10s' },
    watch: { doc: 'Reload when a CA, certificate or key file changes (a configuration reload, SIGHUP or tether reload, always reloads).', format: Boolean, default: true },
    watchDebounce: { doc: 'Quiet time after a file change before reloading.', format: duration, default: '500ms' },
  },
  create(ctx, options) {
    const settings = resolveSettings(ctx.backends, options);
    if (settings.size === 0) ctx.log.warn('tls-upstream: no backend is configured for TLS (set all, or backends.<name>)');
    const unverified = [...settings].filter(([, s]) => !s.verify).map(([name]) => name);
    if (unverified.length > 0) ctx.log.warn({ backends: unverified }, 'tls-upstream: broker certificates of these backends are NOT verified (verify: false)');
    let current = UpstreamContexts.load(settings);

    const reload = (trigger: ReloadTrigger): void => {
      let next: UpstreamContexts;
      try {
        next = UpstreamContexts.load(settings);
      } catch (err) {
        ctx.stats.inc('reload_failures');
        ctx.log.error({ trigger, err: describeError(err) }, 'tls-upstream reload failed; keeping the certificates in use');
        return;
      }
      if (trigger === 'file change' && next.digest === current.digest) return;
      current = next;
      ctx.stats.inc('reloads');
      ctx.log.info({ trigger }, 'tls-upstream certificates reloaded; new connections use them');
    };
    // Without TLS backends there is nothing to reload. The product's signal (retired by a reload,
    // or Tether stopping) stops the reloader.
    const reloader = current.size === 0 ? undefined : new Reloader({
      files: current.files(),
      watch: options.watch,
      debounceMs: durationMs(options.watchDebounce),
      signal: ctx.signal,
      reload,
      onWatchError: (dir, err) => ctx.log.warn({ dir, err: err.message }, 'cannot watch tls-upstream files for changes; reload with SIGHUP or tether reload'),
    });

    const timeoutMs = durationMs(options.handshakeTimeout);
    return {
      reload: () => reloader?.reloadNow(),
      close: () => reloader?.close(),
      async attach(_conn, backend, upstream) {
        const tls = current.get(backend.id);
        if (!tls) return upstream;
        try {
          const secured = await clientHandshake(upstream, backend.host, tls, timeoutMs);
          ctx.stats.inc('handshakes');
          return secured;
        } catch (err) {
          ctx.stats.inc('handshake_failures');
          throw new Error(`backend ${backend.id}: ${describeError(err)}`, { cause: err });
        }
      },
    };
  },
});

/** Per backend: `all` merged with its own entry, paths made absolute, defaults filled in. */
function resolveSettings(backends: readonly Backend[], options: TlsUpstreamOptions): Map<string, UpstreamSettings> {
  const known = new Set(backends.map((b) => b.id));
  const listed = new Map(Object.entries(options.backends));
  for (const [name, entry] of listed) if (entry !== false) checkEntry(entry, `backends.${name}`);
  const unknown = [...listed.keys()].filter((name) => !known.has(name));
  check(unknown.length === 0, `backends: ${unknown.join(', ')} ${unknown.length === 1 ? 'is not a configured backend' : 'are not configured backends'} (known: ${[...known].join(', ') || 'none'})`);
  const settings = new Map<string, UpstreamSettings>();
  for (const { id } of backends) {
    const own = listed.get(id);
    if (own === false || (own === undefined && options.all === null)) continue;
    const e: UpstreamEntry = { ...options.all, ...own };
    const s: UpstreamSettings = {
      ca: e.ca ? filePath(e.ca) : undefined,
      cert: e.cert ? filePath(e.cert) : undefined,
      key: e.key ? filePath(e.key) : undefined,
      servername: e.servername,
      verify: e.verify ?? true,
      minVersion: e.minVersion ?? 'TLSv1.2',
      maxVersion: e.maxVersion ?? 'TLSv1.3',
      ciphers: e.ciphers,
      alpn: e.alpn?.length ? e.alpn : undefined,
    };
    check(Boolean(s.cert) === Boolean(s.key), `backend ${id}: cert and key go together (one comes from all, the other is missing)`);
    settings.set(id, s);
  }
  return settings;
}
