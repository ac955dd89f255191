import { dnsProvider } from './dns-provider.ts';
import { fileProvider } from './file-provider.ts';

export { dnsProvider, fileProvider };
export type { DnsOptions } from './dns-provider.ts';
export type { FileOptions } from './file-provider.ts';

/** Every provider of this package, for registration. */
export default [dnsProvider, fileProvider];
