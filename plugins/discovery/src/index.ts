import { dnsProvider } from './dns-provider.ts';

export { dnsProvider };
export type { DnsOptions } from './dns-provider.ts';

/** Every provider of this package, for registration. */
export default [dnsProvider];
