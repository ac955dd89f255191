import { isIP } from 'node:net';
import { parseHostPort, type HostPort } from '@tether/core';

/**
 * The benchmark drives traffic only at this machine: a mistyped address must not turn it into a
 * load test of somebody else's broker.
 */
export function isLoopback(host: string): boolean {
  if (host === 'localhost' || host === '::1') return true;
  return isIP(host) === 4 && host.startsWith('127.');
}

/** Parses HOST:PORT and refuses anything but a loopback address. */
export function loopbackAddress(text: string): HostPort {
  const address = parseHostPort(text, '127.0.0.1');
  if (!isLoopback(address.host)) throw new Error(`"${text}" is not a loopback address: tether bench network only drives traffic at this machine (127.0.0.0/8, ::1, localhost)`);
  if (address.port === 0) throw new Error(`"${text}" needs a port`);
  return address;
}
