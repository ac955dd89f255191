import type { TetherPlugin } from '@tether/core';
import { certCn } from './cert-cn.ts';
import { tlsTransport } from './tls-transport.ts';
import { tlsUpstream } from './tls-upstream.ts';

export { certCn, tlsTransport, tlsUpstream };
export type { CertCnOptions, CertField } from './cert-cn.ts';
export type { TlsOptions } from './tls-transport.ts';
export type { TlsUpstreamOptions, UpstreamEntry } from './tls-upstream.ts';
export { parseSubjectAltNames, serverNamesOf } from './certificate-names.ts';
/** The three plugins: `tls` (transport), `cert-cn` (extractor), `tls-upstream` (sink). */
const plugins: readonly TetherPlugin[] = [tlsTransport, certCn, tlsUpstream];
export default plugins;
