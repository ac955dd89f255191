import { randomUUID } from 'node:crypto';
import { defineSink, PLUGIN_API_VERSION } from '@tether/core';
import { connectionTlvs, TLV_NAMES, type TlvName } from './connection-tlvs.ts';
import { proxyV1, proxyV2 } from './proxy-header.ts';

export interface ProxyProtocolOptions {
  tlvs: string | string[] | null;
  backends: Record<string, string | string[] | null> | null;
}

/** Where the unique id sent in the v2 header is kept, so other plugins (and a retry) see the same one. */
export const UNIQUE_ID_ATTRIBUTE = 'proxy-protocol:unique-id';

const splitList = (text: string): string[] => text.split(/[\s,]+/).filter(Boolean);

function tlvNames(value: unknown, at: string): TlvName[] {
  if (value === null || value === undefined) return [];
  const list = typeof value === 'string' ? splitList(value) : value;
  if (!Array.isArray(list)) throw new Error(`${at} must be a list of TLV names (${TLV_NAMES.join(', ')})`);
  for (const name of list) {
    if (!TLV_NAMES.includes(name as TlvName)) throw new Error(`${at}: "${String(name)}" is not a TLV this sink sends (${TLV_NAMES.join(', ')})`);
  }
  return list as TlvName[];
}

function backendsFormat(value: unknown): void {
  if (value === null) return;
  if (typeof value !== 'object' || Array.isArray(value)) throw new Error('must map backend names to TLV lists, e.g. { emqx1: [ssl], legacy: [] }');
  for (const [name, list] of Object.entries(value as object)) tlvNames(list ?? [], `backends.${name}`);
}

/**
 * Writes a PROXY header before the client's bytes so the broker sees the real client and
 * listener addresses (HAProxy's `send-proxy` / `send-proxy-v2`). The version is chosen per backend
 * with its `sendProxy` setting; backends with `none` get nothing. v2 headers can carry TLVs
 * describing the client's TLS connection (HAProxy's `proxy-v2-options`), chosen for all backends
 * with `tlvs` and per backend with `backends.<name>`. None by default.
 */
export const proxyProtocol = defineSink<ProxyProtocolOptions>({
  name: 'proxy-protocol',
  kind: 'sink',
  apiVersion: PLUGIN_API_VERSION,
  version: '0.1.0',
  description: 'PROXY protocol v1/v2 header (v2 with optional TLVs) towards backends whose sendProxy is v1 or v2.',
  options: {
    // null defaults, not []/{}: convict JSON-parses a string given for an option whose default is
    // an object or array, and `tlvs: "alpn,ssl"` is a natural thing to write in an env variable.
    tlvs: {
      doc: `TLVs added to every v2 header: any of ${TLV_NAMES.join(', ')}. TLS ones are sent only for connections that arrived over TLS. null: none (the header is addresses only).`,
      format: (value: unknown) => void tlvNames(value, 'tlvs'),
      default: null,
    },
    backends: {
      doc: 'Per-backend TLV lists, each replacing `tlvs` for the backend it names: { <backend name>: [...] } ([] for addresses only).',
      format: backendsFormat,
      default: null,
    },
  },
  create(ctx, options) {
    const everywhere = new Set(tlvNames(options.tlvs, 'tlvs'));
    const perBackend = new Map(Object.entries(options.backends ?? {}).map(([id, list]) => [id, new Set(tlvNames(list, `backends.${id}`))]));
    const known = new Set(ctx.backends.map((b) => b.id));
    // A misspelt name would silently send the default TLVs; say so at start instead.
    const strangers = [...perBackend.keys()].filter((id) => !known.has(id));
    if (known.size > 0 && strangers.length > 0) throw new Error(`backends names no configured backend: ${strangers.join(', ')} (backends are: ${[...known].join(', ')})`);
    for (const b of ctx.backends) {
      const wanted = perBackend.get(b.id) ?? everywhere;
      if (b.sendProxy === 'v1' && wanted.size > 0) ctx.log.warn({ backend: b.id, tlvs: [...wanted] }, 'backend uses PROXY v1, which cannot carry TLVs; they are not sent to it');
    }

    return {
      attach(conn, backend, upstream) {
        if (backend.sendProxy === 'none') return upstream;
        const endpoints = {
          sourceAddress: conn.remoteAddress,
          sourcePort: conn.remotePort,
          destinationAddress: conn.localAddress,
          destinationPort: conn.localPort,
        };
        if (backend.sendProxy === 'v1') {
          upstream.write(proxyV1(endpoints));
        } else {
          const wanted = perBackend.get(backend.id) ?? everywhere;
          const tlvs = wanted.size === 0 ? [] : connectionTlvs(conn.tls, wanted, wanted.has('unique-id') ? uniqueIdOf(conn.attributes) : undefined);
          upstream.write(proxyV2(endpoints, { tlvs, crc32c: wanted.has('crc32c') }));
        }
        ctx.stats.inc(`sent_${backend.sendProxy}`);
        return upstream;
      },
    };
  },
});

/** One id per client connection, kept when a failed connect is retried on another backend. */
function uniqueIdOf(attributes: Map<string, unknown>): string {
  let id = attributes.get(UNIQUE_ID_ATTRIBUTE);
  if (typeof id !== 'string') {
    id = randomUUID();
    attributes.set(UNIQUE_ID_ATTRIBUTE, id);
  }
  return id as string;
}
