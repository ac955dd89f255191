import { createLogger, Stats, validateOptions, type ConnectionError, type ConnFacts, type Transport } from '@tether/core';
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, TLSSocket } from 'node:tls';
import {
  Command, INETProtocol, IPv4Address, IPv4ProxyAddress, Peer, TransportProtocol, UnspecProxyAddress, V1ProxyProtocol, V2ProxyProtocol,
} from 'proxy-protocol-js';
import { afterEach, describe, expect, it } from 'vitest';
import { PROXY_IN_ATTRIBUTE, proxyIn, type ProxyInFacts } from '../src/proxy-in.ts';
import { encodeTlv } from '../src/tlv.ts';

// The transport on real loopback sockets: a server hands each accepted socket to accept(), as a
// Tether listener does, and a client writes what a load balancer would. Headers come from
// proxy-protocol-js's encoders. What the next stage would read is read back from the socket.

const CONNECT = Buffer.from('100d00044d5154540402003c000163', 'hex');

const v1Header = (src: string, dst: string, sport: number, dport: number): Buffer =>
  Buffer.from(new V1ProxyProtocol(INETProtocol.TCP4, new Peer(src, sport), new Peer(dst, dport)).build(), 'latin1');
const v2Header = (src: string, sport: number, dst: string, dport: number): Buffer => {
  const ip = (a: string): IPv4Address => IPv4Address.createFrom(a.split('.').map(Number));
  return Buffer.from(new V2ProxyProtocol(Command.PROXY, TransportProtocol.STREAM, new IPv4ProxyAddress(ip(src), sport, ip(dst), dport)).build());
};
const v2Local = (): Buffer => Buffer.from(new V2ProxyProtocol(Command.LOCAL, TransportProtocol.UNSPEC, new UnspecProxyAddress()).build());

interface Accepted {
  readonly socket: Socket;
  readonly facts: ConnFacts;
  /** accept()'s outcome: the socket it returned, or the ConnectionError it threw. */
  readonly outcome: Promise<{ socket: Socket } | { error: ConnectionError }>;
  readonly startedAt: number;
}

const servers: Server[] = [];
const sockets: Socket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await Promise.all(servers.splice(0).map((s) => new Promise((resolve) => s.close(resolve))));
});

/** proxy-in built as Tether builds it, behind a loopback server; each accepted socket goes through accept(). */
async function listen(options: Record<string, unknown>): Promise<{ stats: Stats; port: number; next: () => Promise<Accepted> }> {
  const stats = new Stats();
  const ctx = { log: createLogger('silent'), stats: stats.scope('proxy_in'), now: Date.now, signal: new AbortController().signal, backends: [] };
  const transport: Transport = await proxyIn.create(ctx, validateOptions(proxyIn, options) as never);
  const queue: Accepted[] = [];
  const waiters: ((a: Accepted) => void)[] = [];
  const server = createServer((socket) => {
    sockets.push(socket);
    socket.on('error', () => undefined);
    const facts: ConnFacts = {
      remoteAddress: socket.remoteAddress!, remotePort: socket.remotePort!, localAddress: socket.localAddress!, localPort: socket.localPort!,
      family: 'IPv4', proxied: false, tls: undefined, listener: 'lb', attributes: new Map(),
    };
    const startedAt = performance.now();
    const outcome = Promise.resolve(transport.accept(socket, facts)).then((s) => ({ socket: s }), (error: ConnectionError) => ({ error }));
    const accepted = { socket, facts, outcome, startedAt };
    const waiter = waiters.shift();
    if (waiter) waiter(accepted);
    else queue.push(accepted);
  });
  servers.push(server);
  server.listen({ host: '127.0.0.1', port: 0 });
  await once(server, 'listening');
  const next = (): Promise<Accepted> => {
    const ready = queue.shift();
    return ready ? Promise.resolve(ready) : new Promise((resolve) => waiters.push(resolve));
  };
  return { stats, port: (server.address() as AddressInfo).port, next };
}

async function client(port: number): Promise<Socket> {
  const socket = connect({ host: '127.0.0.1', port });
  sockets.push(socket);
  socket.on('error', () => undefined);
  await once(socket, 'connect');
  return socket;
}

/** The next `n` bytes the following stage would read from the socket accept() returned. */
function readBytes(socket: Socket, n: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let got = 0;
    const timer = setTimeout(() => reject(new Error(`only ${got} of ${n} bytes arrived`)), 10_000);
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      got += chunk.length;
      if (got >= n) {
        clearTimeout(timer);
        resolve(Buffer.concat(chunks));
      }
    });
  });
}

async function accepted(a: Accepted): Promise<Socket> {
  const result = await a.outcome;
  if ('error' in result) throw new Error(`accept refused: ${result.error.message}`);
  return result.socket;
}

async function refused(a: Accepted): Promise<ConnectionError & { elapsedMs: number }> {
  const result = await a.outcome;
  if (!('error' in result)) throw new Error('accept did not refuse');
  return Object.assign(result.error, { elapsedMs: performance.now() - a.startedAt });
}

describe('proxy-in: a header from the load balancer', () => {
  it.each([
    ['v1', v1Header('192.0.2.10', '203.0.113.5', 50123, 1883)],
    ['v2', v2Header('192.0.2.10', 50123, '203.0.113.5', 1883)],
  ])('%s: the client becomes the remote end, the bytes after the header reach the next stage intact', async (version, header) => {
    const { stats, port, next } = await listen({});
    const lb = await client(port);
    lb.write(Buffer.concat([header, CONNECT]));
    const a = await next();
    const socket = await accepted(a);
    expect(socket).toBe(a.socket);
    expect(a.facts).toMatchObject({ remoteAddress: '192.0.2.10', remotePort: 50123, localAddress: '203.0.113.5', localPort: 1883, family: 'IPv4', proxied: true });
    const seen = a.facts.attributes.get(PROXY_IN_ATTRIBUTE) as ProxyInFacts;
    expect(seen).toEqual({ version: version === 'v1' ? 1 : 2, command: 'proxy', peer: `127.0.0.1:${lb.localPort}`, tlvs: [] });
    expect(await readBytes(socket, CONNECT.length)).toEqual(CONNECT);
    expect(stats.snapshot()).toEqual({ [`proxy_in_header_${version}`]: 1 });
  });

  it('a header trickling in byte by byte, the CONNECT in the same packet as its last byte', async () => {
    const { port, next } = await listen({});
    const lb = await client(port);
    lb.setNoDelay(true);
    const header = v2Header('198.51.100.7', 4242, '203.0.113.5', 1883);
    const a = await next();
    for (const byte of header.subarray(0, -1)) {
      await new Promise<void>((resolve) => lb.write(Buffer.from([byte]), () => resolve()));
      await new Promise((resolve) => setTimeout(resolve, 2)); // pacing, so the bytes travel apart
    }
    lb.write(Buffer.concat([header.subarray(-1), CONNECT]));
    const socket = await accepted(a);
    expect(a.facts).toMatchObject({ remoteAddress: '198.51.100.7', remotePort: 4242, proxied: true });
    expect(await readBytes(socket, CONNECT.length)).toEqual(CONNECT);
  });

  it('v2 TLVs are skipped (and kept in the attribute); the CONNECT after them is intact', async () => {
    const { port, next } = await listen({});
    const lb = await client(port);
    const tlvs = Buffer.concat([encodeTlv(0x01, Buffer.from('mqtt')), encodeTlv(0xea, Buffer.from('vpce-1'))]);
    const header = Buffer.concat([v2Header('192.0.2.10', 50123, '203.0.113.5', 1883), tlvs]);
    header.writeUInt16BE(12 + tlvs.length, 14);
    lb.write(Buffer.concat([header, CONNECT]));
    const a = await next();
    const socket = await accepted(a);
    expect((a.facts.attributes.get(PROXY_IN_ATTRIBUTE) as ProxyInFacts).tlvs.map((t) => [t.type, t.value.toString()])).toEqual([[0x01, 'mqtt'], [0xea, 'vpce-1']]);
    expect(await readBytes(socket, CONNECT.length)).toEqual(CONNECT);
  });

  it.each([
    ['v2 LOCAL (a health check of the balancer)', v2Local(), 'proxy_in_local'],
    ['v1 UNKNOWN', Buffer.from('PROXY UNKNOWN\r\n'), 'proxy_in_unknown'],
  ])('%s keeps the real socket addresses', async (_case, header, counter) => {
    const { stats, port, next } = await listen({});
    const lb = await client(port);
    lb.write(Buffer.concat([header, CONNECT]));
    const a = await next();
    const socket = await accepted(a);
    expect(a.facts).toMatchObject({ remoteAddress: '127.0.0.1', remotePort: lb.localPort, localPort: port, proxied: false });
    expect(await readBytes(socket, CONNECT.length)).toEqual(CONNECT);
    expect(stats.get(counter)).toBe(1);
  });

  it('an IPv6 client behind an IPv4 balancer connection: family IPv6', async () => {
    const { port, next } = await listen({});
    const lb = await client(port);
    lb.write(Buffer.concat([Buffer.from('PROXY TCP6 2001:db8::7 2001:db8::1 50123 1883\r\n'), CONNECT]));
    const a = await next();
    await accepted(a);
    expect(a.facts).toMatchObject({ remoteAddress: '2001:db8::7', localAddress: '2001:db8::1', family: 'IPv6', proxied: true });
  });
});

/** A self-signed certificate made with Debian's openssl, or undefined when it is not installed. */
function selfSigned(): { key: Buffer; cert: Buffer } | undefined {
  const dir = mkdtempSync(join(tmpdir(), 'proxy-in-tls-'));
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '1', '-subj', '/CN=localhost'], { stdio: 'ignore', timeout: 20_000 });
    return { key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) };
  } catch {
    if (process.env.CI === 'true') throw new Error('openssl is required in CI but could not make a certificate');
    return undefined;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
const certificate = selfSigned();

describe('proxy-in: before TLS (the 8883 layout behind a balancer)', () => {
  it.skipIf(!certificate)(`the TLS handshake after the header completes on the socket accept() returned${certificate ? '' : ' [skipped: openssl not installed]'}`, async () => {
    const { port, next } = await listen({});
    const lb = await client(port);
    lb.write(v2Header('192.0.2.10', 50123, '203.0.113.5', 8883));
    // The ClientHello follows the header on the same connection, possibly in the same packet.
    const tlsClient = tlsConnect({ socket: lb, rejectUnauthorized: false, servername: 'localhost' });
    tlsClient.on('error', () => undefined);
    const a = await next();
    const socket = await accepted(a);
    expect(a.facts).toMatchObject({ remoteAddress: '192.0.2.10', proxied: true });
    const server = new TLSSocket(socket, { isServer: true, ...certificate! });
    server.on('error', () => undefined);
    await once(tlsClient, 'secureConnect');
    tlsClient.write('over tls');
    const [data] = (await once(server, 'data')) as [Buffer];
    expect(data.toString()).toBe('over tls');
    server.destroy();
  });
});

describe('proxy-in: mode required (the default)', () => {
  it('a connection already reset when accepted (a balancer health check) counts as an early close, not as untrusted', async () => {
    const stats = new Stats();
    const ctx = { log: createLogger('silent'), stats: stats.scope('proxy_in'), now: Date.now, signal: new AbortController().signal, backends: [] };
    const transport: Transport = await proxyIn.create(ctx, validateOptions(proxyIn, { trustedSources: ['127.0.0.1'] }) as never);
    const server = createServer();
    servers.push(server);
    server.listen({ host: '127.0.0.1', port: 0 });
    await once(server, 'listening');
    const accepted = once(server, 'connection') as Promise<[Socket]>;
    await client((server.address() as AddressInfo).port);
    const [socket] = await accepted;
    socket.destroy(); // what Node hands over when the peer reset before accept: no peer address
    expect(socket.remoteAddress).toBeUndefined();
    const facts: ConnFacts = { remoteAddress: '', remotePort: 0, localAddress: '', localPort: 0, family: 'IPv4', proxied: false, tls: undefined, listener: 'lb', attributes: new Map() };
    await expect(Promise.resolve(transport.accept(socket, facts))).rejects.toMatchObject({ reason: 'client_closed_early' });
  });


  it('refuses a plain MQTT client at its first byte, long before the timeout', async () => {
    const { port, next } = await listen({ timeout: '20s' });
    (await client(port)).write(CONNECT);
    const err = await refused(await next());
    expect(err).toMatchObject({ reason: 'proxy_header_missing', code: 'TETHER_ERR_PROXY_HEADER_MISSING' });
    expect(err.message).toMatch(/starts with an MQTT CONNECT/);
    expect(err.elapsedMs).toBeLessThan(5_000);
  });

  it('refuses a peer that sends nothing, or half a header, once the timeout has passed', async () => {
    const { port, next } = await listen({ timeout: '300ms' });
    const silent = await client(port);
    const a = await next();
    const half = await client(port);
    half.write(v2Header('192.0.2.10', 1, '10.0.0.1', 2).subarray(0, 20));
    const b = await next();
    for (const [peer, received] of [[a, 0], [b, 20]] as const) {
      const err = await refused(peer);
      expect(err).toMatchObject({ reason: 'proxy_header_timeout', message: `no complete PROXY header within 300 ms (${received} bytes received)` });
      // Not before the timeout; the upper bound is generous for a loaded machine.
      expect(err.elapsedMs).toBeGreaterThanOrEqual(290);
      expect(err.elapsedMs).toBeLessThan(5_000);
    }
    expect(silent.destroyed).toBe(false); // refusing is the pipeline's job (it destroys the socket)
  });

  it('refuses a malformed header', async () => {
    const { port, next } = await listen({});
    (await client(port)).write('PROXY TCP4 999.1.1.1 10.0.0.1 1 2\r\n');
    expect(await refused(await next())).toMatchObject({ reason: 'proxy_header_invalid', message: expect.stringMatching(/"999.1.1.1" is not an IPv4 address/) });
  });

  it('refuses a v2 header longer than maxHeaderBytes as soon as its length is read', async () => {
    const { port, next } = await listen({ maxHeaderBytes: 512, timeout: '20s' });
    const header = v2Header('192.0.2.10', 1, '10.0.0.1', 2);
    header.writeUInt16BE(1000, 14);
    (await client(port)).write(header); // the 1000 bytes it announces never come
    const err = await refused(await next());
    expect(err).toMatchObject({ reason: 'proxy_header_invalid', message: expect.stringMatching(/declares 1016 bytes, more than maxHeaderBytes \(512\)/) });
    expect(err.elapsedMs).toBeLessThan(5_000);
  });

  it('a peer that closes mid-header is counted as an early close', async () => {
    const { port, next } = await listen({});
    const lb = await client(port);
    lb.end(Buffer.from('PROXY TCP4 192.0.2.10'));
    expect(await refused(await next())).toMatchObject({ reason: 'client_closed_early', message: 'client closed before a complete PROXY header (21 bytes received)' });
  });
});

describe('proxy-in: mode optional', () => {
  it('takes a connection without a header as a direct client, every byte left for the next stage', async () => {
    const { stats, port, next } = await listen({ mode: 'optional' });
    const direct = await client(port);
    direct.write(CONNECT);
    const a = await next();
    const socket = await accepted(a);
    expect(a.facts).toMatchObject({ remoteAddress: '127.0.0.1', remotePort: direct.localPort, proxied: false });
    expect(a.facts.attributes.has(PROXY_IN_ATTRIBUTE)).toBe(false);
    expect(await readBytes(socket, CONNECT.length)).toEqual(CONNECT);
    expect(stats.snapshot()).toEqual({ proxy_in_no_header: 1 });
  });

  it('still reads a header when there is one', async () => {
    const { port, next } = await listen({ mode: 'optional' });
    (await client(port)).write(Buffer.concat([v1Header('192.0.2.10', '10.0.0.1', 5, 1883), CONNECT]));
    const a = await next();
    await accepted(a);
    expect(a.facts).toMatchObject({ remoteAddress: '192.0.2.10', proxied: true });
  });

  it('still refuses a broken header (optional is about its absence, not its validity)', async () => {
    const { port, next } = await listen({ mode: 'optional' });
    (await client(port)).write('PROXY TCP4 1.2.3.4\r\n');
    expect(await refused(await next())).toMatchObject({ reason: 'proxy_header_invalid' });
  });
});

describe('proxy-in: trustedSources', () => {
  it('a peer in the list may send a header', async () => {
    const { port, next } = await listen({ trustedSources: ['10.0.0.0/8', '127.0.0.0/8'] });
    (await client(port)).write(Buffer.concat([v1Header('192.0.2.10', '10.0.0.1', 5, 1883), CONNECT]));
    const a = await next();
    await accepted(a);
    expect(a.facts).toMatchObject({ remoteAddress: '192.0.2.10', proxied: true });
  });

  it('required: a peer outside the list is refused at once, without reading a byte', async () => {
    const { port, next } = await listen({ trustedSources: '10.0.0.0/8, fd00::/8', timeout: '20s' });
    await client(port); // sends nothing: the verdict cannot depend on what it sends
    const err = await refused(await next());
    expect(err).toMatchObject({ reason: 'proxy_source_untrusted', message: '127.0.0.1 is not in trustedSources, so it may not send a PROXY header' });
    expect(err.elapsedMs).toBeLessThan(5_000);
  });

  it('optional: a peer outside the list may connect directly, but its header is refused', async () => {
    const { port, next } = await listen({ mode: 'optional', trustedSources: ['192.0.2.1'] });
    (await client(port)).write(CONNECT);
    const direct = await next();
    await accepted(direct);
    expect(direct.facts.proxied).toBe(false);
    (await client(port)).write(Buffer.concat([v1Header('192.0.2.10', '10.0.0.1', 5, 1883), CONNECT]));
    const spoofer = await next();
    expect(await refused(spoofer)).toMatchObject({ reason: 'proxy_source_untrusted' });
    expect(spoofer.facts.remoteAddress).toBe('127.0.0.1'); // the header's claim was not applied
  });
});

describe('proxy-in: options', () => {
  it('has defaults: required, 3s, any source, 4096 bytes', () => {
    expect(validateOptions(proxyIn, {})).toEqual({ mode: 'required', timeout: '3s', trustedSources: null, maxHeaderBytes: 4096 });
  });

  it.each([
    [{ mode: 'sometimes' }, /mode/],
    [{ timeout: 'soon' }, /timeout: must be a duration of at least 1ms/],
    [{ timeout: 0 }, /timeout: must be a duration of at least 1ms/],
    [{ trustedSources: ['10.0.0.0/33'] }, /"10.0.0.0\/33" has a prefix length outside 0..32/],
    [{ trustedSources: ['lb.example.com'] }, /"lb.example.com" is not an IP address or a CIDR block/],
    [{ trustedSources: [] }, /trustedSources: must name at least one address/],
    [{ maxHeaderBytes: 100 }, /maxHeaderBytes: must be a whole number of bytes from 107 to 65551/],
    [{ header: 'v2' }, /'header' not declared/],
  ])('refuses %j', (options, message) => {
    expect(() => validateOptions(proxyIn, options)).toThrow(message);
  });
});
