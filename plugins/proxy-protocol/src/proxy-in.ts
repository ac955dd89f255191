import { defineTransport, durationFormat, parseDuration, PLUGIN_API_VERSION, type ConnFacts } from '@tether/core';
import { ProxyClientClosedError, ProxySourceUntrustedError } from './errors.ts';
import { MAX_MAX_HEADER_BYTES, MIN_MAX_HEADER_BYTES, type ProxyHeader } from './proxy-parser.ts';
import { readProxyHeader } from './read-header.ts';
import type { Tlv } from './tlv.ts';
import { TrustedSources } from './trusted-sources.ts';

export interface ProxyInOptions {
  mode: 'required' | 'optional';
  timeout: string | number;
  trustedSources: string | string[] | null;
  maxHeaderBytes: number;
}

/** What proxy-in leaves in `attributes` for later plugins, under PROXY_IN_ATTRIBUTE. */
export interface ProxyInFacts {
  readonly version: 1 | 2;
  readonly command: 'proxy' | 'local';
  /** The peer that sent the header (the load balancer), as `address:port` of the TCP connection. */
  readonly peer: string;
  /** The v2 TLVs the header carried (ALPN, authority, SSL, a cloud's own ...), undecoded. */
  readonly tlvs: readonly Tlv[];
}

/** Namespaced as the plugin contract asks. */
export const PROXY_IN_ATTRIBUTE = 'proxy-in:header';

function sourcesFormat(value: unknown): void {
  if (value === null) return;
  const list = typeof value === 'string' ? splitList(value) : value;
  if (!Array.isArray(list) || !list.every((s) => typeof s === 'string')) throw new Error('must be a list of addresses or CIDR blocks, e.g. [10.0.0.0/8, "fd00::/8"]');
  // An empty list would refuse every header: surely a mistake, and null already means "any peer".
  if (list.length === 0) throw new Error('must name at least one address or CIDR block (null: any peer)');
  TrustedSources.parse(list as string[]);
}

function maxBytesFormat(value: unknown): void {
  if (!Number.isInteger(value) || (value as number) < MIN_MAX_HEADER_BYTES || (value as number) > MAX_MAX_HEADER_BYTES) {
    throw new Error(`must be a whole number of bytes from ${MIN_MAX_HEADER_BYTES} to ${MAX_MAX_HEADER_BYTES}`);
  }
}

const splitList = (text: string): string[] => text.split(/[\s,]+/).filter(Boolean);

/**
 * Tether behind an L4 load balancer (HAProxy `send-proxy[-v2]`, AWS NLB, ...): reads the PROXY
 * protocol v1 or v2 header the balancer puts before the client's bytes and makes the original
 * client the connection's remote end, so extractors, logs and the PROXY header Tether itself sends
 * to brokers name the client, not the balancer. Runs per listener, before `tls` when both are used.
 */
export const proxyIn = defineTransport<ProxyInOptions>({
  name: 'proxy-in',
  kind: 'transport',
  apiVersion: PLUGIN_API_VERSION,
  version: '0.1.0',
  description: 'Accepts a PROXY protocol v1/v2 header on a listener (Tether behind an L4 load balancer).',
  options: {
    mode: {
      doc: 'required: refuse a connection that does not start with a PROXY header; optional: take it as a direct client (the balancer\'s own health checks, local clients).',
      format: ['required', 'optional'],
      default: 'required',
    },
    timeout: {
      doc: 'Time the peer has to send the complete header; a connection that has not is refused (proxy_header_timeout).',
      format: durationFormat({ min: 1 }),
      default: '3s',
    },
    trustedSources: {
      doc: 'Addresses or CIDR blocks allowed to send a header (the balancers). A header from any other peer is refused (proxy_source_untrusted); with mode required, so is every connection from it. null: any peer.',
      format: sourcesFormat,
      default: null,
    },
    maxHeaderBytes: {
      doc: `Longest header accepted, TLVs included; a v2 header declaring more is refused as soon as its length is read. v1 lines are at most ${MIN_MAX_HEADER_BYTES} bytes anyway.`,
      format: maxBytesFormat,
      default: 4096,
    },
  },
  create(ctx, options) {
    const timeoutMs = parseDuration(options.timeout)!;
    const sources = options.trustedSources === null ? undefined : typeof options.trustedSources === 'string' ? splitList(options.trustedSources) : options.trustedSources;
    const trusted = sources ? TrustedSources.parse(sources) : undefined;
    const required = options.mode === 'required';
    return {
      async accept(socket, facts) {
        // The TCP peer, never the header, decides trust: the header is what is being vouched for.
        const peerAddress = socket.remoteAddress;
        // No peer address: the connection was reset before it was even accepted (HAProxy's
        // health checks close with a reset). Not a trust question, and nothing to read.
        if (!peerAddress) throw new ProxyClientClosedError(0);
        const peer = `${peerAddress}:${socket.remotePort ?? 0}`;
        const isTrusted = trusted?.allows(peerAddress) ?? true;
        if (!isTrusted && required) throw new ProxySourceUntrustedError(peerAddress);
        const header = await readProxyHeader(socket, { timeoutMs, maxBytes: options.maxHeaderBytes, optional: !required });
        if (!header) {
          ctx.stats.inc('no_header');
          return socket;
        }
        if (!isTrusted) throw new ProxySourceUntrustedError(peerAddress);
        ctx.stats.inc(`header_v${header.version}`);
        if (header.command === 'local') ctx.stats.inc('local');
        else if (!header.addresses) ctx.stats.inc('unknown');
        apply(facts, header, peer);
        return socket;
      },
    };
  },
});

/** The header's source becomes the remote end, its destination the local end (what the client dialled). */
function apply(facts: ConnFacts, header: ProxyHeader, peer: string): void {
  const seen: ProxyInFacts = { version: header.version, command: header.command, peer, tlvs: header.tlvs };
  facts.attributes.set(PROXY_IN_ATTRIBUTE, seen);
  const a = header.addresses;
  // LOCAL, UNKNOWN and non-TCP families: keep the real endpoints, as the spec asks.
  if (!a) return;
  facts.remoteAddress = a.sourceAddress;
  facts.remotePort = a.sourcePort;
  facts.localAddress = a.destinationAddress;
  facts.localPort = a.destinationPort;
  facts.family = a.family;
  facts.proxied = true;
}
