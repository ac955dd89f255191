import { describe, expect, it } from 'vitest';
import { formatHostPort, parseHostPort } from '../../src/net/address.ts';

describe('parseHostPort', () => {
  it.each([
    ['IPv4', '127.0.0.1:1883', { host: '127.0.0.1', port: 1883 }],
    ['a host name', 'broker.example:8883', { host: 'broker.example', port: 8883 }],
    ['bracketed IPv6 loopback', '[::1]:1883', { host: '::1', port: 1883 }],
    ['bracketed full IPv6', '[2001:db8::5]:443', { host: '2001:db8::5', port: 443 }],
    ['bracketed IPv4-mapped IPv6', '[::ffff:127.0.0.1]:1', { host: '::ffff:127.0.0.1', port: 1 }],
    ['port 0 (pick a free port)', '127.0.0.1:0', { host: '127.0.0.1', port: 0 }],
    ['port 65535', '127.0.0.1:65535', { host: '127.0.0.1', port: 65535 }],
    ['surrounding whitespace', '  127.0.0.1:1883 ', { host: '127.0.0.1', port: 1883 }],
    ['a port alone (all interfaces)', ':1883', { host: '0.0.0.0', port: 1883 }],
  ])('parses %s', (_name, text, expected) => {
    expect(parseHostPort(text)).toEqual(expected);
  });

  it('uses the given default host for a port alone', () => {
    expect(parseHostPort(':9000', '127.0.0.1')).toEqual({ host: '127.0.0.1', port: 9000 });
  });

  it.each([
    ['no colon', 'localhost', /is not host:port/],
    ['an empty string', '', /is not host:port/],
    ['an empty port', '127.0.0.1:', /has no numeric port/],
    ['a named port', '127.0.0.1:mqtt', /has no numeric port/],
    ['a negative port', '127.0.0.1:-1', /has no numeric port/],
    ['a port above 65535', '127.0.0.1:65536', /port above 65535/],
    ['an unbracketed IPv6 address', '::1:1883', /write IPv6 addresses as \[addr\]:port/],
    ['brackets around something that is not IPv6', '[127.0.0.1]:1883', /invalid IPv6 address/],
    ['brackets around a host name', '[localhost]:1883', /invalid IPv6 address/],
  ])('rejects %s with a message quoting the input', (_name, text, message) => {
    expect(() => parseHostPort(text)).toThrow(message);
    expect(() => parseHostPort(text)).toThrow(`"${text}"`);
  });
});

describe('formatHostPort', () => {
  it.each([
    [{ host: '127.0.0.1', port: 1883 }, '127.0.0.1:1883'],
    [{ host: '::1', port: 1883 }, '[::1]:1883'],
    [{ host: 'broker.example', port: 1 }, 'broker.example:1'],
  ])('writes %o as %s, and parseHostPort reads it back', (hp, text) => {
    expect(formatHostPort(hp)).toBe(text);
    expect(parseHostPort(text)).toEqual(hp);
  });
});
