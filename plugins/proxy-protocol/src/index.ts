import { proxyProtocol } from './plugin.ts';
import { proxyIn } from './proxy-in.ts';

// Two plugins: the `proxy-protocol` sink (PROXY towards brokers) and the `proxy-in` transport
// (PROXY from a load balancer in front of Tether). The default export is the sink, as before.
export { proxyProtocol, proxyIn };
export const plugins = [proxyProtocol, proxyIn] as const;
export { UNIQUE_ID_ATTRIBUTE } from './plugin.ts';
export type { ProxyProtocolOptions } from './plugin.ts';
export { PROXY_IN_ATTRIBUTE } from './proxy-in.ts';
export type { ProxyInFacts, ProxyInOptions } from './proxy-in.ts';
export { proxyV1, proxyV2, proxyV2Local } from './proxy-header.ts';
export type { ProxyEndpoints, V2Extensions } from './proxy-header.ts';
export { inspectProxyHeader, V1_MAX_LENGTH } from './proxy-parser.ts';
export type { ProxyAddresses, ProxyHeader, ProxyParseResult } from './proxy-parser.ts';
export { connectionTlvs, TLV_NAMES } from './connection-tlvs.ts';
export type { TlvName } from './connection-tlvs.ts';
export * from './tlv.ts';
export {
  ProxyClientClosedError, ProxyHeaderInvalidError, ProxyHeaderMissingError, ProxyHeaderTimeoutError, ProxySourceUntrustedError,
} from './errors.ts';
export default proxyProtocol;
