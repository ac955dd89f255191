import type { IClientOptions } from 'mqtt';
import { createServer, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { startBalancer, type TestBalancer } from '../harness/balancer.ts';
import { ClientPool, Inbox } from '../harness/traffic-mqtt-clients.ts';
import { canonicalIp, startProxyAedesBackend, type ProxyAedesBackend } from '../harness/traffic-proxy-backend.ts';
import { Teardown } from '../harness/traffic-teardown.ts';

/**
 * PROXY protocol end to end: Tether writes the header (per backend `sendProxy`), a backend decodes
 * it with an independent implementation (proxy-protocol-js) and then serves MQTT with a real aedes
 * on the rest of the stream. The header must name the MQTT client's own socket as the source and
 * Tether's listener as the destination, and the MQTT session behind it must work.
 */

/** Whether this host can bind ::1 (containers without IPv6 cannot). */
async function canBind(host: string): Promise<boolean> {
  const server = createServer();
  return new Promise<boolean>((resolve) => {
    server.once('error', () => resolve(false));
    server.listen({ host, port: 0 }, () => server.close(() => resolve(true)));
  });
}
const ipv6 = await canBind('::1');

const teardown = new Teardown();
const pool = new ClientPool();

afterEach(async () => {
  await pool.closeAll();
  await teardown.run();
}, 30_000);

interface Family {
  readonly family: 'IPv4' | 'IPv6';
  readonly host: string;
  readonly available: boolean;
}
const FAMILIES: Family[] = [
  { family: 'IPv4', host: '127.0.0.1', available: true },
  { family: 'IPv6', host: '::1', available: ipv6 },
];

const hostPort = (host: string, port: number): string => (host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`);

async function setup(host: string, sendProxy: 'v1' | 'v2' | 'none'): Promise<{ backend: ProxyAedesBackend; balancer: TestBalancer; client: (id: string) => IClientOptions }> {
  const backend = teardown.add('proxy backend', await startProxyAedesBackend(host), (b) => b.close());
  const balancer = teardown.add(
    'balancer',
    await startBalancer({ listen: hostPort(host, 0), backends: [{ name: 'proxied', address: hostPort(host, backend.port), sendProxy }] }),
    (b) => b.close(),
  );
  // Host and port as options, not a URL: an IPv6 literal then needs no bracket handling.
  const client = (clientId: string): IClientOptions => ({ host, port: balancer.port, protocol: 'mqtt', clientId, clean: true });
  return { backend, balancer, client };
}

for (const { family, host, available } of FAMILIES) {
  const reason = available ? '' : ` [skipped: cannot bind ${host} on this host (no IPv6 loopback)]`;

  describe.skipIf(!available)(`PROXY protocol over ${family} (${host})${reason}`, { timeout: 60_000 }, () => {
    it.each(['v1', 'v2'] as const)('%s: the header names the client and the listener, and the MQTT session behind it works', async (version) => {
      const { backend, balancer, client } = await setup(host, version);
      const clientId = `pp-${version}-${family}`;
      const inbox = new Inbox();
      const header = backend.nextHeader();
      const { client: device, connack } = await pool.connect(undefined, client(clientId), inbox);
      expect(connack.returnCode).toBe(0);

      const socket = device.stream as Socket;
      const decoded = await header;
      expect(decoded).toMatchObject({ version: version === 'v1' ? 1 : 2, family, sourcePort: socket.localPort, destinationPort: balancer.port });
      if (version === 'v2') expect(decoded).toMatchObject({ command: 'PROXY', transport: 'STREAM' });
      expect(canonicalIp(decoded.sourceAddress)).toBe(canonicalIp(socket.localAddress!));
      // The destination is Tether's listener as the client reached it.
      expect(canonicalIp(decoded.destinationAddress)).toBe(canonicalIp(balancer.server.address.host));
      expect(canonicalIp(decoded.destinationAddress)).toBe(canonicalIp(socket.remoteAddress!));
      expect(backend.refusals).toEqual([]);

      // The bytes after the header were MQTT, intact: subscribe, publish, receive our own message.
      await device.subscribeAsync(`pp/${clientId}`, { qos: 1 });
      await device.publishAsync(`pp/${clientId}`, `through a ${version} header`, { qos: 1 });
      await inbox.until('the published message back', (m) => m.length >= 1);
      expect(inbox.messages.map((m) => [m.topic, m.payload.toString(), m.qos])).toEqual([[`pp/${clientId}`, `through a ${version} header`, 1]]);
    });

    it('v2: concurrent connections each get a header with their own source port', async () => {
      const { backend, client } = await setup(host, 'v2');
      const connected = await Promise.all([1, 2, 3, 4].map((i) => pool.connect(undefined, client(`pp-many-${family}-${i}`))));
      const ports = connected.map(({ client: c }) => (c.stream as Socket).localPort);
      // All four CONNACKs came from aedes, which handles a socket only after its header was decoded.
      expect(backend.headers).toHaveLength(4);
      expect(backend.headers.map((h) => h.sourcePort).sort()).toEqual([...ports].sort());
    });

    it('control: without sendProxy the same backend refuses the connection (it really requires the header)', async () => {
      const { backend, client } = await setup(host, 'none');
      await expect(pool.connect(undefined, client(`pp-none-${family}`))).rejects.toThrow(/closed before CONNACK|ECONNRESET|EPIPE/);
      expect(backend.headers).toEqual([]);
      expect(backend.refusals).toHaveLength(1);
      // What it refused was the client's CONNECT (MQTT fixed header 0x10), sent with no header before it.
      expect(backend.refusals[0]!.startsWith('10')).toBe(true);
    });
  });
}
