import { isIP } from 'node:net';

/**
 * Whether binding `host` keeps a server on this machine: 127.0.0.0/8, ::1 (also as an IPv4-mapped
 * address) or the name `localhost`. Any other name could resolve anywhere, so it does not count.
 */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase().replace(/\.$/, '');
  if (h === 'localhost') return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) !== 6) return false;
  if (h === '::1' || h === '0:0:0:0:0:0:0:1') return true;
  const mapped = /^::ffff:(.+)$/.exec(h)?.[1];
  return mapped !== undefined && isIP(mapped) === 4 && mapped.startsWith('127.');
}

/** Whether `host` binds every interface (0.0.0.0 or ::). */
export function isWildcardHost(host: string): boolean {
  return host === '0.0.0.0' || host === '::' || host === '0:0:0:0:0:0:0:0';
}
