import { defineExtractor, PLUGIN_API_VERSION } from '@tether/core';

export const CERT_FIELDS = ['cn', 'san:dns', 'san:email', 'san:uri'] as const;
export type CertField = (typeof CERT_FIELDS)[number];

export interface CertCnOptions {
  field: CertField;
  verifiedOnly: boolean;
}

/** The SAN type prefixes of TlsFacts.peerSAN, by field. */
const SAN_PREFIX: Record<Exclude<CertField, 'cn'>, string> = { 'san:dns': 'DNS:', 'san:email': 'email:', 'san:uri': 'URI:' };

/**
 * The stickiness key from the client certificate a `tls` listener verified: its CN, or its first
 * DNS, email or URI subject alternative name. A device's certificate identity, unlike its MQTT
 * client id, cannot be chosen by the device, so two devices cannot share a key by accident or on
 * purpose. Connections without such a certificate get no key here (the next extractor tries).
 */
export const certCn = defineExtractor<CertCnOptions>({
  name: 'cert-cn',
  kind: 'extractor',
  apiVersion: PLUGIN_API_VERSION,
  version: '0.1.0',
  description: 'Key is the client certificate\'s CN (or a SAN) from a tls listener.',
  options: {
    field: { doc: 'Which part of the client certificate is the key: cn, san:dns, san:email or san:uri (the first SAN of that type).', format: [...CERT_FIELDS], default: 'cn' },
    verifiedOnly: { doc: 'Use only certificates that verified against the listener\'s CA (verify: optional lets unverified ones in; their contents are whatever the client wrote).', format: Boolean, default: true },
  },
  create(_ctx, { field, verifiedOnly }) {
    return {
      extract(conn) {
        const tls = conn.tls;
        if (!tls || (verifiedOnly && !tls.verified)) return undefined;
        if (field === 'cn') return tls.peerCN || undefined;
        const prefix = SAN_PREFIX[field];
        const san = tls.peerSAN.find((n) => n.startsWith(prefix));
        return san ? san.slice(prefix.length) || undefined : undefined;
      },
    };
  },
});
