import { proxyProtocol } from './plugin.ts';

export { proxyProtocol };
export { proxyV1, proxyV2 } from './proxy-header.ts';
export type { ProxyEndpoints } from './proxy-header.ts';
export default proxyProtocol;
