import { isIP } from 'node:net';

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

/**
 * Parses `host:port`, `[v6]:port` or `:port` (all interfaces). Throws an Error whose message is
 * fit to show the user.
 */
export function parseHostPort(text: string, defaultHost = '0.0.0.0'): HostPort {
  const value = text.trim();
  let host: string;
  let portText: string;
  const v6 = /^\[([^\]]+)\]:(\d+)$/.exec(value);
  if (v6) {
    host = v6[1]!;
    portText = v6[2]!;
    if (isIP(host) !== 6) throw new Error(`"${text}" has an invalid IPv6 address`);
  } else {
    const colon = value.lastIndexOf(':');
    if (colon < 0) throw new Error(`"${text}" is not host:port`);
    host = value.slice(0, colon) || defaultHost;
    portText = value.slice(colon + 1);
    if (host.includes(':')) throw new Error(`"${text}": write IPv6 addresses as [addr]:port`);
  }
  if (!/^\d+$/.test(portText)) throw new Error(`"${text}" has no numeric port`);
  const port = Number(portText);
  if (port > 65535) throw new Error(`"${text}" has a port above 65535`);
  return { host, port };
}

export function formatHostPort({ host, port }: HostPort): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}
