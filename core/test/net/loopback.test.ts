import { describe, expect, it } from 'vitest';
import { isLoopbackHost, isWildcardHost } from '../../src/net/loopback.ts';

describe('isLoopbackHost: may the admin API bind here without a token?', () => {
  it.each(['127.0.0.1', '127.1.2.3', '::1', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1', 'localhost', 'LOCALHOST', 'localhost.'])('%s is loopback', (host) => {
    expect(isLoopbackHost(host)).toBe(true);
  });

  it.each(['0.0.0.0', '::', '10.0.0.1', '192.168.1.2', '128.0.0.1', '::ffff:10.0.0.1', 'fe80::1', 'example.com', 'localhost.example.com', '127.0.0.1.nip.io'])('%s is not', (host) => {
    expect(isLoopbackHost(host)).toBe(false);
  });

  it('tells wildcard binds apart', () => {
    expect(['0.0.0.0', '::'].map(isWildcardHost)).toEqual([true, true]);
    expect(['127.0.0.1', '::1', '10.0.0.1'].map(isWildcardHost)).toEqual([false, false, false]);
  });
});
