import { testConn } from '@tether/core/testing';
import { PassThrough } from 'node:stream';
import { PLUGIN_API_VERSION, validateOptions, type ConnInfo } from '@tether/core';
import { describe, expect, it } from 'vitest';
import proxyProtocol from '../src/index.ts';
import { canonicalV6, decode } from './decode.ts';
import { backend, CLIENT_BYTES, makeSink as make, written } from './sink-harness.ts';

// The sink without TLVs (its default): the header carries addresses only, decoded independently
// (proxy-protocol-js). TLVs: sink-tlvs.test.ts.

const conn = (remoteAddress: string, remotePort: number, localAddress: string, localPort: number): ConnInfo =>
  testConn({ key: 'c', keySource: 'client-id', connect: { clientId: 'c' }, facts: { remoteAddress, remotePort, localAddress, localPort, family: remoteAddress.includes(':') ? 'IPv6' : 'IPv4' } });

describe('proxy-protocol sink', () => {
  it('is a sink for this API version; options it does not declare are refused', () => {
    expect(proxyProtocol).toMatchObject({ name: 'proxy-protocol', kind: 'sink', apiVersion: PLUGIN_API_VERSION });
    expect(() => validateOptions(proxyProtocol, { version: 'v2' })).toThrow(/'version' not declared/);
  });

  it('writes nothing to a backend with sendProxy none and returns the same stream', async () => {
    const { sink, stats } = await make();
    const upstream = new PassThrough();
    expect(await sink.attach(conn('192.0.2.1', 5000, '10.0.0.1', 1883), backend('none'), upstream)).toBe(upstream);
    upstream.write(CLIENT_BYTES);
    expect(await written(upstream)).toEqual(CLIENT_BYTES);
    expect(stats.snapshot()).toEqual({});
  });

  it.each([
    ['v1', 1, 'TCP4', conn('192.0.2.1', 5000, '10.0.0.1', 1883), '192.0.2.1', '10.0.0.1'],
    ['v2', 2, 'TCP4', conn('192.0.2.1', 5000, '10.0.0.1', 1883), '192.0.2.1', '10.0.0.1'],
    ['v1', 1, 'TCP6', conn('2001:db8::2', 5000, '2001:db8::1', 1883), canonicalV6('2001:db8::2'), canonicalV6('2001:db8::1')],
    ['v2', 2, 'TCP6', conn('2001:db8::2', 5000, '2001:db8::1', 1883), canonicalV6('2001:db8::2'), canonicalV6('2001:db8::1')],
    // An IPv4 client on a dual-stack listener: the broker is told plain IPv4.
    ['v1', 1, 'TCP4', conn('::ffff:192.0.2.1', 5000, '::ffff:10.0.0.1', 1883), '192.0.2.1', '10.0.0.1'],
    ['v2', 2, 'TCP4', conn('::ffff:192.0.2.1', 5000, '::ffff:10.0.0.1', 1883), '192.0.2.1', '10.0.0.1'],
  ] as const)('writes a %s header (%s) naming the client as source and the listener as destination', async (sendProxy, version, proto, c, src, dst) => {
    const { sink, stats } = await make();
    const upstream = new PassThrough();
    expect(await sink.attach(c, backend(sendProxy), upstream)).toBe(upstream);
    upstream.write(CLIENT_BYTES);
    const decoded = decode(await written(upstream));
    expect(decoded).toMatchObject({ version, proto, src, dst, srcPort: c.remotePort, dstPort: c.localPort });
    // The header comes first and the client's bytes follow untouched.
    expect(decoded.rest).toEqual(CLIENT_BYTES);
    expect(stats.get(`proxy_protocol_sent_${sendProxy}`)).toBe(1);
  });

  it('counts headers per version across connections', async () => {
    const { sink, stats } = await make();
    const c = conn('127.0.0.1', 1, '127.0.0.1', 2);
    for (const v of ['v1', 'v2', 'v2', 'none'] as const) await sink.attach(c, backend(v), new PassThrough());
    expect(stats.snapshot()).toEqual({ proxy_protocol_sent_v1: 1, proxy_protocol_sent_v2: 2 });
  });
});
