import type { IClientOptions } from 'mqtt';
import { createServer, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { startBalancer, type TestBalancer } from '../harness/balancer.ts';
import { skipReason } from '../harness/binaries.ts';
import { freePort } from '../harness/free-port.ts';
import { HaAedes } from '../harness/ha-aedes.ts';
import { haproxyPreamble, HaproxyProcess } from '../harness/haproxy-process.ts';
import { waitFor } from '../harness/poll.ts';
import { connectBytes, RawClient } from '../harness/raw-mqtt-client.ts';
import { ClientPool, Inbox } from '../harness/traffic-mqtt-clients.ts';
import { canonicalIp, startProxyAedesBackend, type ProxyAedesBackend } from '../harness/traffic-proxy-backend.ts';
import { Teardown } from '../harness/traffic-teardown.ts';

/**
 * PROXY protocol against a real peer, HAProxy (Debian's 2.6), both ways:
 * (a) HAProxy as the broker-side receiver (`accept-proxy`) of Tether's v1/v2 headers, forwarding
 *     to a real aedes: HAProxy's own log says which client it was told about;
 * (b) HAProxy in front of Tether (`send-proxy` / `send-proxy-v2` to a proxy-in listener): the
 *     original client must reach the broker in Tether's outgoing header, not HAProxy's address;
 * (c) the proxy-in listener refusing what did not come through HAProxy, counted.
 * Every HAProxy log line is `<frontend> <client ip>:<port> <dest ip>:<port>` (%f %ci:%cp %fi:%fp).
 */

async function canBind(host: string): Promise<boolean> {
  const server = createServer();
  return new Promise<boolean>((resolve) => {
    server.once('error', () => resolve(false));
    server.listen({ host, port: 0 }, () => server.close(() => resolve(true)));
  });
}
const ipv6 = await canBind('::1');
const noHaproxy = skipReason('haproxy');

const LOG_FORMAT = '%f %ci:%cp %fi:%fp';
const LINE = /^(\S+) (\S+):(\d+) (\S+):(\d+)$/;

interface Seen {
  readonly frontend: string;
  readonly client: string;
  readonly clientPort: number;
  readonly dest: string;
  readonly destPort: number;
}

/** The log lines of `frontend` that name a client on `port`: what HAProxy was told or saw. */
async function seenBy(haproxy: HaproxyProcess, frontend: string, port: number): Promise<Seen> {
  const [line] = await haproxy.waitForLines(new RegExp(`^${frontend} \\S+:${port} `));
  const m = LINE.exec(line!)!;
  return { frontend: m[1]!, client: canonicalIp(m[2]!), clientPort: Number(m[3]), dest: canonicalIp(m[4]!), destPort: Number(m[5]) };
}

const teardown = new Teardown();
const pool = new ClientPool();
afterEach(async () => {
  await pool.closeAll();
  await teardown.run();
}, 30_000);

const hostPort = (host: string, port: number): string => (host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`);
const mqttOptions = (host: string, port: number, clientId: string): IClientOptions => ({ host, port, protocol: 'mqtt', clientId, clean: true });

/** Subscribes, publishes and receives its own message: the bytes after every header were MQTT, intact. */
async function roundTrip(client: Awaited<ReturnType<ClientPool['connect']>>['client'], inbox: Inbox, topic: string): Promise<void> {
  await client.subscribeAsync(topic, { qos: 1 });
  await client.publishAsync(topic, 'through haproxy', { qos: 1 });
  await inbox.until(`the message on ${topic}`, (m) => m.length >= 1);
  expect(inbox.messages.map((m) => [m.topic, m.payload.toString()])).toEqual([[topic, 'through haproxy']]);
}

describe.skipIf(noHaproxy !== '')(`PROXY protocol with a real HAProxy${noHaproxy}`, { timeout: 60_000 }, () => {
  describe('(a) HAProxy receives Tether\'s header (accept-proxy) in front of a real broker', () => {
    async function setup(host: string, sendProxy: 'v1' | 'v2' | 'none'): Promise<{ balancer: TestBalancer; haproxy: HaproxyProcess }> {
      const broker = teardown.add('aedes', await HaAedes.start('aedes'), (b) => b.close());
      const port = await freePort();
      const haproxy = teardown.add('haproxy', await HaproxyProcess.start(`${haproxyPreamble(LOG_FORMAT)}
listen recv
  bind 127.0.0.1:${port} accept-proxy
  server broker 127.0.0.1:${broker.port}
`, [port]), (h) => h.close());
      const balancer = teardown.add('balancer', await startBalancer({
        listen: hostPort(host, 0),
        backends: [{ name: 'haproxy', address: `127.0.0.1:${port}`, sendProxy }],
      }), (b) => b.close());
      return { balancer, haproxy };
    }

    for (const { family, host, available } of [{ family: 'IPv4', host: '127.0.0.1', available: true }, { family: 'IPv6', host: '::1', available: ipv6 }]) {
      const why = available ? '' : ' [skipped: cannot bind ::1 on this host]';
      it.skipIf(!available).each(['v1', 'v2'] as const)(`%s over ${family}: HAProxy logs the MQTT client's own address and port, and MQTT works through it${why}`, async (version) => {
        const { balancer, haproxy } = await setup(host, version);
        const inbox = new Inbox();
        const { client, connack } = await pool.connect(undefined, mqttOptions(host, balancer.port, `hap-a-${version}-${family}`), inbox);
        expect(connack.returnCode).toBe(0);
        const { localAddress, localPort } = client.stream as Socket;
        await roundTrip(client, inbox, `hap/a/${version}/${family}`);
        await pool.disconnect(client); // HAProxy logs a tcp session when it ends
        const seen = await seenBy(haproxy, 'recv', localPort!);
        expect(seen).toEqual({ frontend: 'recv', client: canonicalIp(localAddress!), clientPort: localPort, dest: canonicalIp(host), destPort: balancer.port });
      });
    }

    /** HAProxy `recv` (accept-proxy) in front of aedes, and a Tether whose mqtt health checks go to it. */
    async function checked(sendProxy: 'v1' | 'v2' | 'none'): Promise<{ balancer: TestBalancer; haproxy: HaproxyProcess; broker: HaAedes }> {
      const broker = teardown.add('aedes', await HaAedes.start('aedes'), (b) => b.close());
      const port = await freePort();
      const haproxy = teardown.add('haproxy', await HaproxyProcess.start(`${haproxyPreamble(LOG_FORMAT)}
listen recv
  bind 127.0.0.1:${port} accept-proxy
  server broker 127.0.0.1:${broker.port}
`, [port]), (h) => h.close());
      const balancer = teardown.add('balancer', await startBalancer({
        backends: [{ name: 'haproxy', address: `127.0.0.1:${port}`, sendProxy, check: 'mqtt' }],
        'healthCheck.interval': '100ms',
        'healthCheck.timeout': '2s',
      }), (b) => b.close());
      return { balancer, haproxy, broker };
    }

    it.each([['v2', 'LOCAL'], ['v1', 'UNKNOWN']] as const)('Tether\'s own mqtt health checks with sendProxy %s start with a %s header that HAProxy accepts', async (sendProxy, _header) => {
      const { balancer, haproxy, broker } = await checked(sendProxy);
      // HAProxy logs each check session it served (with the real peer: the header relays none).
      await haproxy.waitForLines(/^recv 127\.0\.0\.1:\d+ /, 3);
      // The checks' CONNECTs reached the broker through HAProxy. (aedes may not register a client
      // that leaves right after its CONNACK, so this counts at least one, not one per check.)
      await waitFor(() => broker.landings.some((l) => l.clientId === 'tether-health-check'), { what: 'a health check at the broker' });
      // Every check so far got its CONNACK back: none failed.
      expect(balancer.server.stats.get('health_check_failures')).toBe(0);
    });

    it('control: health checks without sendProxy fail at the same HAProxy', async () => {
      const { balancer } = await checked('none');
      await waitFor(() => balancer.server.stats.get('health_check_failures') >= 1, { what: 'a failed health check' });
    });

    it('control: without sendProxy HAProxy refuses the connection (its accept-proxy really demands a header)', async () => {
      const { balancer } = await setup('127.0.0.1', 'none');
      await expect(pool.connect(undefined, mqttOptions('127.0.0.1', balancer.port, 'hap-a-none'))).rejects.toThrow(/closed before CONNACK|ECONNRESET|EPIPE/);
    });
  });

  describe('(b) HAProxy in front of Tether (send-proxy / send-proxy-v2 to a proxy-in listener)', () => {
    interface Front {
      readonly balancer: TestBalancer;
      readonly haproxy: HaproxyProcess;
      readonly frontPort: number;
      readonly lbPort: number;
    }

    /** HAProxy `front` → Tether's `lb` listener (proxy-in, trusting only 127.0.0.1) → `backendAddress`. */
    async function front(bindHost: string, sendProxy: 'send-proxy' | 'send-proxy-v2', backendAddress: string, extraSections = '', extraPorts: number[] = []): Promise<Front> {
      const balancer = teardown.add('balancer', await startBalancer({
        listeners: [{ name: 'lb', address: '127.0.0.1:0', transports: [{ use: 'proxy-in', options: { mode: 'required', timeout: '2s', trustedSources: ['127.0.0.1'] } }] }],
        backends: [{ name: 'broker', address: backendAddress, sendProxy: 'v2' }],
      }), (b) => b.close());
      const lbPort = balancer.server.addresses.get('lb')!.port;
      const frontPort = await freePort();
      const haproxy = teardown.add('haproxy', await HaproxyProcess.start(`${haproxyPreamble(LOG_FORMAT)}
listen front
  bind ${hostPort(bindHost, frontPort)}
  server tether 127.0.0.1:${lbPort} ${sendProxy}
${extraSections}`, [frontPort, ...extraPorts]), (h) => h.close());
      return { balancer, haproxy, frontPort, lbPort };
    }

    async function proxyBackend(): Promise<ProxyAedesBackend> {
      return teardown.add('proxy backend', await startProxyAedesBackend('127.0.0.1'), (b) => b.close());
    }

    for (const { family, host, available } of [{ family: 'IPv4', host: '127.0.0.1', available: true }, { family: 'IPv6', host: '::1', available: ipv6 }]) {
      const why = available ? '' : ' [skipped: cannot bind ::1 on this host]';
      it.skipIf(!available).each(['send-proxy', 'send-proxy-v2'] as const)(`%s over ${family}: the broker is told the MQTT client, not HAProxy${why}`, async (sendProxy) => {
        const backend = await proxyBackend();
        const { balancer, haproxy, frontPort } = await front(host, sendProxy, `127.0.0.1:${backend.port}`);
        const next = backend.nextHeader();
        const inbox = new Inbox();
        const { client, connack } = await pool.connect(undefined, mqttOptions(host, frontPort, `hap-b-${sendProxy}-${family}`), inbox);
        expect(connack.returnCode).toBe(0);
        const { localAddress, localPort } = client.stream as Socket;
        const header = await next;
        // Source: the client's own socket. Destination: what the client dialled (HAProxy's bind).
        expect(header).toMatchObject({ version: 2, family, sourcePort: localPort, destinationPort: frontPort });
        expect(canonicalIp(header.sourceAddress)).toBe(canonicalIp(localAddress!));
        expect(canonicalIp(header.destinationAddress)).toBe(canonicalIp(host));
        await roundTrip(client, inbox, `hap/b/${sendProxy}/${family}`);
        expect(balancer.server.stats.get(sendProxy === 'send-proxy' ? 'proxy_in_header_v1' : 'proxy_in_header_v2')).toBe(1);
        await pool.disconnect(client);
        // HAProxy saw the same client first hand.
        expect(await seenBy(haproxy, 'front', localPort!)).toMatchObject({ client: canonicalIp(localAddress!), destPort: frontPort });
      });
    }

    it('a whole chain of real peers: HAProxy → Tether → HAProxy (accept-proxy) → aedes, the last HAProxy logs the original client', async () => {
      const broker = teardown.add('aedes', await HaAedes.start('aedes'), (b) => b.close());
      const backPort = await freePort();
      const back = `listen back
  bind 127.0.0.1:${backPort} accept-proxy
  server broker 127.0.0.1:${broker.port}
`;
      const { haproxy, frontPort } = await front('127.0.0.1', 'send-proxy-v2', `127.0.0.1:${backPort}`, back, [backPort]);
      const inbox = new Inbox();
      const { client } = await pool.connect(undefined, mqttOptions('127.0.0.1', frontPort, 'hap-chain'), inbox);
      const { localPort } = client.stream as Socket;
      await roundTrip(client, inbox, 'hap/chain');
      expect(broker.holds('hap-chain')).toBe(true);
      await pool.disconnect(client);
      expect(await seenBy(haproxy, 'back', localPort!)).toEqual({ frontend: 'back', client: '127.0.0.1', clientPort: localPort, dest: '127.0.0.1', destPort: frontPort });
    });

    it('HAProxy\'s MQTT health checks with check-send-proxy arrive as v2 LOCAL: served, with the checker\'s real address', async () => {
      const backend = await proxyBackend();
      const balancer = teardown.add('balancer', await startBalancer({
        listeners: [{ name: 'lb', address: '127.0.0.1:0', transports: [{ use: 'proxy-in', options: { trustedSources: '127.0.0.1' } }] }],
        backends: [{ name: 'broker', address: `127.0.0.1:${backend.port}`, sendProxy: 'v2' }],
      }), (b) => b.close());
      const lbPort = balancer.server.addresses.get('lb')!.port;
      const frontPort = await freePort();
      // An MQTT check (HAProxy 2.6 has no mqtt-check): a CONNECT, then a CONNACK accepting it is
      // expected. check-send-proxy puts a LOCAL header before it.
      teardown.add('haproxy', await HaproxyProcess.start(`${haproxyPreamble(LOG_FORMAT)}
listen front
  bind 127.0.0.1:${frontPort}
  option tcp-check
  tcp-check send-binary ${connectBytes('haproxy-check').toString('hex')}
  tcp-check expect binary 20020000
  server tether 127.0.0.1:${lbPort} send-proxy-v2 check-send-proxy check inter 200ms
`, [frontPort]), (h) => h.close());
      await waitFor(() => backend.headers.length >= 2, { what: () => `two health checks at the broker (stats: ${JSON.stringify(balancer.server.stats.snapshot())})` });
      expect(balancer.server.stats.get('proxy_in_local')).toBeGreaterThanOrEqual(2);
      // LOCAL keeps the real endpoints: the broker is told HAProxy's own socket, towards Tether's listener.
      for (const header of backend.headers) expect(header).toMatchObject({ sourceAddress: '127.0.0.1', destinationAddress: '127.0.0.1', destinationPort: lbPort });
      expect(balancer.server.stats.get('connections_spliced')).toBeGreaterThanOrEqual(2);
    });
  });

  describe('(c) a listener that requires PROXY refuses what did not come through HAProxy', () => {
    it('a plain client connecting to the proxy-in listener directly is refused within the timeout and counted; HAProxy\'s clients still work', async () => {
      const backend = teardown.add('proxy backend', await startProxyAedesBackend('127.0.0.1'), (b) => b.close());
      const balancer = teardown.add('balancer', await startBalancer({
        listeners: [{ name: 'lb', address: '127.0.0.1:0', transports: [{ use: 'proxy-in', options: { mode: 'required', timeout: '1s' } }] }],
        backends: [{ name: 'broker', address: `127.0.0.1:${backend.port}`, sendProxy: 'v2' }],
      }), (b) => b.close());
      const lbPort = balancer.server.addresses.get('lb')!.port;
      const frontPort = await freePort();
      teardown.add('haproxy', await HaproxyProcess.start(`${haproxyPreamble(LOG_FORMAT)}
listen front
  bind 127.0.0.1:${frontPort}
  server tether 127.0.0.1:${lbPort} send-proxy-v2
`, [frontPort]), (h) => h.close());

      // A plain MQTT client: refused at its CONNECT's first byte.
      await expect(pool.connect(undefined, mqttOptions('127.0.0.1', lbPort, 'sneaky'))).rejects.toThrow(/closed before CONNACK|ECONNRESET|EPIPE/);
      // A client that sends nothing: refused when the 1 s timeout passes.
      const started = performance.now();
      const silent = await RawClient.connect(lbPort);
      teardown.add('silent client', silent, (c) => c.destroy());
      await silent.waitClosed();
      const elapsed = performance.now() - started;
      expect(elapsed).toBeGreaterThanOrEqual(990);
      expect(elapsed).toBeLessThan(8_000);
      await waitFor(() => balancer.server.stats.get('rejected_proxy_header_timeout') === 1, { what: 'the timeout to be counted' });
      expect(balancer.server.stats.snapshot()).toMatchObject({ rejected_proxy_header_missing: 1, rejected_proxy_header_timeout: 1, connections_rejected: 2 });
      expect(backend.headers).toEqual([]);

      const { connack } = await pool.connect(undefined, mqttOptions('127.0.0.1', frontPort, 'through-haproxy'));
      expect(connack.returnCode).toBe(0);
      expect(backend.headers).toHaveLength(1);
    });
  });
});
