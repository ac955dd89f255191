import { INETProtocol, Peer, V1ProxyProtocol, V2ProxyProtocol, Command, TransportProtocol, IPv4ProxyAddress, IPv4Address, UnspecProxyAddress } from 'proxy-protocol-js';
import type { Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { startBalancer, type TestBalancer } from '../harness/balancer.ts';
import { logLines, waitFor, waitForLog } from '../harness/poll.ts';
import { connectBytes, RawClient } from '../harness/raw-mqtt-client.ts';
import { ClientPool } from '../harness/traffic-mqtt-clients.ts';
import { canonicalIp, startProxyAedesBackend, type ProxyAedesBackend } from '../harness/traffic-proxy-backend.ts';
import { Teardown } from '../harness/traffic-teardown.ts';

/**
 * proxy-in end to end, without HAProxy (proxy-haproxy.test.ts has it): a raw client plays the
 * load balancer, writing a header made by an independent encoder (proxy-protocol-js) and then the
 * client's CONNECT. Tether, with sendProxy v2 towards a broker that decodes headers with that
 * same independent library, must name the ORIGINAL client there, and the MQTT session must work.
 */

const teardown = new Teardown();
const pool = new ClientPool();
const raws: RawClient[] = [];

afterEach(async () => {
  for (const r of raws.splice(0)) r.destroy();
  await pool.closeAll();
  await teardown.run();
}, 30_000);

interface Setup {
  readonly balancer: TestBalancer;
  readonly backend: ProxyAedesBackend;
  /** Port of the listener with proxy-in. */
  readonly lbPort: number;
}

async function setup(proxyIn: Record<string, unknown>): Promise<Setup> {
  const backend = teardown.add('proxy backend', await startProxyAedesBackend('127.0.0.1'), (b) => b.close());
  const balancer = teardown.add('balancer', await startBalancer({
    listeners: [{ name: 'lb', address: '127.0.0.1:0', transports: [{ use: 'proxy-in', options: proxyIn }] }],
    backends: [{ name: 'broker', address: `127.0.0.1:${backend.port}`, sendProxy: 'v2' }],
  }), (b) => b.close());
  return { balancer, backend, lbPort: balancer.server.addresses.get('lb')!.port };
}

async function raw(port: number): Promise<RawClient> {
  const client = await RawClient.connect(port);
  raws.push(client);
  return client;
}

const v1 = (proto: 'TCP4' | 'TCP6', src: string, sport: number, dst: string, dport: number): Buffer =>
  Buffer.from(new V1ProxyProtocol(INETProtocol[proto], new Peer(src, sport), new Peer(dst, dport)).build(), 'latin1');
const v2 = (src: string, sport: number, dst: string, dport: number): Buffer => {
  const ip = (a: string): IPv4Address => IPv4Address.createFrom(a.split('.').map(Number));
  return Buffer.from(new V2ProxyProtocol(Command.PROXY, TransportProtocol.STREAM, new IPv4ProxyAddress(ip(src), sport, ip(dst), dport)).build());
};
const v2Local = (): Buffer => Buffer.from(new V2ProxyProtocol(Command.LOCAL, TransportProtocol.UNSPEC, new UnspecProxyAddress()).build());

describe('proxy-in: Tether behind a PROXY-sending load balancer', { timeout: 60_000 }, () => {
  it.each([
    ['v1 TCP4', v1('TCP4', '192.0.2.10', 50123, '203.0.113.5', 1883), 'IPv4', '192.0.2.10', '203.0.113.5'],
    ['v1 TCP6', v1('TCP6', '2001:db8::7', 50123, '2001:db8::1', 1883), 'IPv6', '2001:db8::7', '2001:db8::1'],
    ['v2 IPv4', v2('192.0.2.10', 50123, '203.0.113.5', 1883), 'IPv4', '192.0.2.10', '203.0.113.5'],
  ] as const)('%s: the broker is told the original client, and the session behind works', async (name, header, family, src, dst) => {
    const { backend, balancer, lbPort } = await setup({});
    const next = backend.nextHeader();
    const lb = await raw(lbPort);
    // Header and CONNECT in separate writes, as a balancer relays the client's first packet later.
    await lb.write(header);
    await lb.write(connectBytes(`pin-${name}`));
    expect((await lb.waitForPacket('connack')).returnCode).toBe(0);
    const decoded = await next;
    expect(decoded).toMatchObject({ version: 2, family, sourcePort: 50123, destinationPort: 1883 });
    expect(canonicalIp(decoded.sourceAddress)).toBe(canonicalIp(src));
    expect(canonicalIp(decoded.destinationAddress)).toBe(canonicalIp(dst));
    expect(balancer.server.stats.snapshot()).toMatchObject({ [`proxy_in_header_v${header[0] === 0x50 ? 1 : 2}`]: 1, connections_spliced: 1 });
  });

  it('v2 LOCAL (the balancer\'s own connection): the broker is told the real peer', async () => {
    const { backend, balancer, lbPort } = await setup({});
    const next = backend.nextHeader();
    const lb = await raw(lbPort);
    await lb.write(Buffer.concat([v2Local(), connectBytes('pin-local')]));
    expect((await lb.waitForPacket('connack')).returnCode).toBe(0);
    expect(await next).toMatchObject({ sourceAddress: '127.0.0.1', sourcePort: lb.socket.localPort, destinationPort: lbPort });
    expect(balancer.server.stats.get('proxy_in_local')).toBe(1);
  });

  it('mode required: a plain MQTT client is refused well within the timeout, counted and logged', async () => {
    const { backend, balancer, lbPort } = await setup({ mode: 'required', timeout: '20s' });
    const started = performance.now();
    await expect(pool.connect(undefined, { host: '127.0.0.1', port: lbPort, clientId: 'no-header' })).rejects.toThrow(/closed before CONNACK|ECONNRESET|EPIPE/);
    expect(performance.now() - started).toBeLessThan(10_000);
    const line = await waitForLog(balancer.logs, { msg: 'connection rejected', reason: 'proxy_header_missing' });
    expect(line).toMatchObject({ listener: 'lb', remote: '127.0.0.1', code: 'TETHER_ERR_PROXY_HEADER_MISSING' });
    expect(balancer.server.stats.snapshot()).toMatchObject({ connections_rejected: 1, rejected_proxy_header_missing: 1 });
    expect(backend.headers).toEqual([]); // nothing reached a broker
  });

  it('a peer that sends no header at all is refused once the timeout passes, not before', async () => {
    const { balancer, lbPort } = await setup({ timeout: '400ms' });
    const started = performance.now();
    const silent = await raw(lbPort);
    await silent.waitClosed();
    expect(performance.now() - started).toBeGreaterThanOrEqual(390);
    await waitFor(() => balancer.server.stats.get('rejected_proxy_header_timeout') === 1, { what: 'rejected_proxy_header_timeout = 1' });
  });

  it('a malformed header is refused as invalid', async () => {
    const { balancer, lbPort } = await setup({});
    const lb = await raw(lbPort);
    await lb.write('PROXY TCP4 192.0.2.10 203.0.113.5 50123 99999\r\n');
    await lb.waitClosed();
    await waitFor(() => balancer.server.stats.get('rejected_proxy_header_invalid') === 1, { what: 'rejected_proxy_header_invalid = 1' });
    expect(logLines(balancer.logs, { reason: 'proxy_header_invalid' })[0]).toMatchObject({ err: expect.stringMatching(/ports "50123" and "99999"/) });
  });

  it('mode optional: a direct client works and the broker is told its real address', async () => {
    const { backend, balancer, lbPort } = await setup({ mode: 'optional' });
    const next = backend.nextHeader();
    const { client, connack } = await pool.connect(undefined, { host: '127.0.0.1', port: lbPort, clientId: 'direct' });
    expect(connack.returnCode).toBe(0);
    expect(await next).toMatchObject({ sourceAddress: '127.0.0.1', sourcePort: (client.stream as Socket).localPort });
    expect(balancer.server.stats.get('proxy_in_no_header')).toBe(1);
  });

  it('the plain listener next to it is not affected', async () => {
    const { balancer } = await setup({});
    const { connack } = await pool.connect(undefined, { host: '127.0.0.1', port: balancer.port, clientId: 'main-listener' });
    expect(connack.returnCode).toBe(0);
    expect(balancer.server.stats.get('connections_rejected')).toBe(0);
  });

  it('trustedSources: a balancer outside the list is refused, its claim never reaches a broker', async () => {
    const { backend, balancer, lbPort } = await setup({ trustedSources: ['10.0.0.0/8'] });
    const lb = await raw(lbPort);
    await lb.write(Buffer.concat([v1('TCP4', '192.0.2.10', 50123, '203.0.113.5', 1883), connectBytes('spoofed')]));
    await lb.waitClosed();
    await waitFor(() => balancer.server.stats.get('rejected_proxy_source_untrusted') === 1, { what: 'rejected_proxy_source_untrusted = 1' });
    expect(backend.headers).toEqual([]);
  });
});
