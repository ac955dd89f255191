import { testConn } from '@tether/core/testing';
import { PassThrough } from 'node:stream';
import { createLogger, PLUGIN_API_VERSION, Stats, validateOptions, type Backend, type ConnInfo, type Sink } from '@tether/core';
import { describe, expect, it } from 'vitest';
import proxyProtocol from '../src/index.ts';
import { canonicalV6, decode } from './decode.ts';

// The sink writes the header into the upstream stream before the pipeline replays the client's
// bytes. A PassThrough stands in for the upstream socket; its contents are decoded independently.

const backend = (sendProxy: Backend['sendProxy']): Backend =>
  ({ id: `b-${sendProxy}`, host: '127.0.0.1', port: 1, weight: 1, state: 'ready', sendProxy, maxconn: 0, activeConnections: 0 });

const conn = (remoteAddress: string, remotePort: number, localAddress: string, localPort: number): ConnInfo =>
  testConn({ key: 'c', keySource: 'client-id', connect: { clientId: 'c' }, facts: { remoteAddress, remotePort, localAddress, localPort, family: remoteAddress.includes(':') ? 'IPv6' : 'IPv4' } });

async function make(): Promise<{ sink: Sink; stats: Stats }> {
  const stats = new Stats();
  const ctx = { log: createLogger('silent'), stats: stats.scope('proxy_protocol'), now: Date.now, signal: new AbortController().signal, backends: [] };
  return { sink: await proxyProtocol.create(ctx, validateOptions(proxyProtocol, {})), stats };
}

/** Everything written to the upstream so far (the PassThrough is ended first). */
async function written(upstream: PassThrough): Promise<Buffer> {
  upstream.end();
  const chunks: Buffer[] = [];
  for await (const chunk of upstream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

const CLIENT_BYTES = Buffer.from('100d00044d5154540402003c000163', 'hex'); // a CONNECT, replayed after the header

describe('proxy-protocol sink', () => {
  it('is a sink for this API version without options', () => {
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
