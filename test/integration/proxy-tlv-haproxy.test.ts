import { createLogger, Stats, validateOptions, type ConnInfo, type TlsFacts } from '@tether/core';
import { testBackend, testConn } from '@tether/core/testing';
import {
  connectionTlvs, inspectProxyHeader, proxyProtocol, UNIQUE_ID_ATTRIBUTE, type ProxyHeader, type TlvName,
} from '@tether/plugin-proxy-protocol';
import { once } from 'node:events';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { PassThrough } from 'node:stream';
import { connect as tlsConnect } from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import { skipReason } from '../harness/binaries.ts';
import { freePort } from '../harness/free-port.ts';
import { HaAedes } from '../harness/ha-aedes.ts';
import { makeTestPki, type TestPki } from '../harness/haproxy-certs.ts';
import { haproxyPreamble, HaproxyProcess } from '../harness/haproxy-process.ts';
import { waitFor, within } from '../harness/poll.ts';
import { connectBytes, RawClient } from '../harness/raw-mqtt-client.ts';
import { Teardown } from '../harness/traffic-teardown.ts';

/**
 * PROXY v2 TLVs against HAProxy 2.6, both ways, since no JavaScript decoder reads TLVs:
 * (1) HAProxy reads the sink's TLVs: it validates their framing and the CRC32C, and reports the
 *     authority and unique id it decoded (fc_pp_authority, fc_pp_unique_id) in its log;
 * (2) HAProxy, terminating a real TLS client (SNI, ALPN, client certificate), writes its own TLVs
 *     (send-proxy-v2-ssl-cn, proxy-v2-options): proxy-in's parser reads them, and the sink's
 *     encoding of the same TLS facts is byte for byte HAProxy's.
 */

const noHaproxy = skipReason('haproxy') || skipReason('openssl');
const teardown = new Teardown();
afterEach(async () => teardown.run(), 30_000);

const TLS = {
  protocol: 'TLSv1.3',
  cipher: 'TLS_AES_128_GCM_SHA256',
  servername: 'broker.example.net',
  alpn: 'mqtt',
  peerCN: 'sensor-7',
  peerSAN: [],
  verified: true,
  verifyError: undefined,
} as const;

/** The sink as Tether builds it, for one v2 backend. */
async function sink(tlvs: readonly TlvName[]) {
  const ctx = { log: createLogger('silent'), stats: new Stats().scope('proxy_protocol'), now: Date.now, signal: new AbortController().signal, backends: [testBackend('haproxy', { sendProxy: 'v2' })] };
  return proxyProtocol.create(ctx, validateOptions(proxyProtocol, { tlvs: [...tlvs] }) as never);
}

describe.skipIf(noHaproxy !== '')(`PROXY v2 TLVs with a real HAProxy${noHaproxy}`, { timeout: 60_000 }, () => {
  describe('(1) HAProxy (accept-proxy) reads the TLVs the sink writes', () => {
    async function receiver(): Promise<{ haproxy: HaproxyProcess; port: number }> {
      const broker = teardown.add('aedes', await HaAedes.start('aedes'), (b) => b.close());
      const port = await freePort();
      const haproxy = teardown.add('haproxy', await HaproxyProcess.start(`${haproxyPreamble('%ci:%cp authority=%[fc_pp_authority] uid=%[fc_pp_unique_id]')}
listen recv
  bind 127.0.0.1:${port} accept-proxy
  server broker 127.0.0.1:${broker.port}
`, [port]), (h) => h.close());
      return { haproxy, port };
    }

    /** A connection to HAProxy with the sink's header on it (as Tether's upstream would be), then a CONNECT. */
    async function sendThrough(port: number, conn: ConnInfo, tlvs: readonly TlvName[], damage?: (header: Buffer) => void): Promise<RawClient> {
      const upstream = teardown.add('upstream', await RawClient.connect(port), (c) => c.destroy());
      const product = await sink(tlvs);
      if (!damage) {
        await product.attach(conn, testBackend('haproxy', { sendProxy: 'v2' }), upstream.socket);
        await upstream.write(connectBytes(conn.connect.clientId));
        return upstream;
      }
      const capture = new PassThrough();
      await product.attach(conn, testBackend('haproxy', { sendProxy: 'v2' }), capture);
      const header = capture.read() as Buffer;
      damage(header);
      // One write: HAProxy resets the connection on a bad header, and a second write would fail.
      upstream.socket.write(Buffer.concat([header, connectBytes(conn.connect.clientId)]));
      return upstream;
    }

    const conn = (clientId: string): ConnInfo =>
      testConn({ connect: { clientId }, facts: { remoteAddress: '192.0.2.10', remotePort: 50123, localAddress: '10.0.0.1', localPort: 8883, tls: TLS } });

    it('every TLV, checksummed: HAProxy accepts the header, decodes authority and unique id, and the broker answers', async () => {
      const { haproxy, port } = await receiver();
      const c = conn('tlv-all');
      const upstream = await sendThrough(port, c, ['alpn', 'authority', 'unique-id', 'ssl', 'crc32c']);
      expect((await upstream.waitForPacket('connack')).returnCode).toBe(0);
      upstream.destroy();
      const uid = c.attributes.get(UNIQUE_ID_ATTRIBUTE) as string;
      expect(uid).toMatch(/^[0-9a-f-]{36}$/);
      expect(await haproxy.waitForLines(/^192\.0\.2\.10:50123 /)).toEqual([`192.0.2.10:50123 authority=broker.example.net uid=${uid}`]);
    });

    it('control: the same header with one byte of the authority changed fails HAProxy\'s CRC check, and nothing is served', async () => {
      const { haproxy, port } = await receiver();
      // Header layout: 16 fixed + 12 addresses + CRC TLV (7) + authority TLV type and length (3).
      const upstream = await sendThrough(port, conn('tlv-damaged'), ['authority', 'crc32c'], (h) => void (h[16 + 12 + 7 + 3]! ^= 0x20));
      await upstream.waitClosed();
      expect(upstream.packets).toEqual([]);
      expect(haproxy.lines.some((l) => l.includes('authority=broker.example.net'))).toBe(false);
    });
  });

  describe('(2) HAProxy terminates TLS and writes its TLVs; proxy-in reads them; the sink writes the same bytes', () => {
    /** A server that reads one PROXY header per connection with proxy-in's parser, then closes. */
    async function headerReceiver(): Promise<{ port: number; next: () => Promise<ProxyHeader> }> {
      const results: ({ header: ProxyHeader } | { rejected: string })[] = [];
      const server = createServer((socket) => {
        socket.on('error', () => undefined);
        let view = Buffer.alloc(0);
        socket.on('data', (chunk: Buffer) => {
          view = Buffer.concat([view, chunk]);
          const result = inspectProxyHeader(view, 4096);
          if (result.kind === 'need-more') return;
          results.push(result.kind === 'done' ? { header: result.header } : { rejected: result.detail });
          socket.destroy();
        });
      });
      teardown.add('header receiver', server, (s: Server) => new Promise((resolve) => s.close(resolve)));
      server.listen({ host: '127.0.0.1', port: 0 });
      await once(server, 'listening');
      let taken = 0;
      const next = async (): Promise<ProxyHeader> => {
        const result = await waitFor(() => results[taken], { what: 'a PROXY header from HAProxy' });
        taken++;
        if ('rejected' in result) throw new Error(`proxy-in's parser refused HAProxy's header: ${result.rejected}`);
        return result.header;
      };
      return { port: (server.address() as AddressInfo).port, next };
    }

    /** A TLS client of HAProxy; what it learned of its own connection is taken before HAProxy closes it. */
    async function tlsClient(port: number, pki: TestPki, withCertificate: boolean): Promise<{ localPort: number; facts: TlsFacts }> {
      const socket = tlsConnect({
        host: '127.0.0.1', port, servername: 'broker.test', ALPNProtocols: ['mqtt'], ca: pki.ca,
        ...(withCertificate ? { cert: pki.clientCert, key: pki.clientKey } : {}),
      });
      teardown.add('tls client', socket, (s) => s.destroy());
      socket.on('error', () => undefined);
      await within(once(socket, 'secureConnect'), 'the TLS handshake with HAProxy');
      // The facts as the tls transport would record them, from this side of the same handshake.
      const facts: TlsFacts = {
        protocol: socket.getProtocol()!, cipher: socket.getCipher().name, servername: 'broker.test', alpn: socket.alpnProtocol || undefined,
        peerCN: withCertificate ? pki.clientCN : undefined, peerSAN: [], verified: withCertificate, verifyError: undefined,
      };
      const localPort = socket.localPort!;
      // HAProxy connects to its server, header first, once the client has spoken.
      socket.write('hello');
      return { localPort, facts };
    }

    it.each([
      ['a verified client certificate', true],
      ['no client certificate', false],
    ])('%s', async (_case, withCertificate) => {
      const pki = teardown.add('pki', makeTestPki('device-42'), (p) => p.close());
      const receiver = await headerReceiver();
      const port = await freePort();
      teardown.add('haproxy', await HaproxyProcess.start(`${haproxyPreamble('%ci:%cp')}
listen tls
  bind 127.0.0.1:${port} ssl crt ${pki.serverPemFile} ca-file ${pki.caFile} verify optional alpn mqtt
  unique-id-format "%ci:%cp"
  server recv 127.0.0.1:${receiver.port} send-proxy-v2-ssl-cn proxy-v2-options ssl-cipher,authority,unique-id,crc32c
`, [port]), (h) => h.close());

      const { localPort, facts } = await tlsClient(port, pki, withCertificate);
      const header = await receiver.next();
      // proxy-in's parser read HAProxy's header (and checked its CRC32C: the header was accepted).
      expect(header).toMatchObject({ version: 2, command: 'proxy', addresses: { family: 'IPv4', sourceAddress: '127.0.0.1', sourcePort: localPort, destinationPort: port } });
      expect(header.tlvs.map((t) => t.type)).toEqual([0x03, 0x01, 0x02, 0x05, 0x20]);
      expect(header.tlvs[3]!.value.toString()).toBe(`127.0.0.1:${localPort}`); // HAProxy's unique-id-format

      const ours = connectionTlvs(facts, new Set(['alpn', 'authority', 'ssl']), undefined);
      const theirs = header.tlvs.filter((t) => [0x01, 0x02, 0x20].includes(t.type)).map((t) => Buffer.concat([Buffer.from([t.type, t.value.length >> 8, t.value.length & 0xff]), t.value]));
      if (withCertificate) {
        expect(ours.map((b) => b.toString('hex'))).toEqual(theirs.map((b) => b.toString('hex')));
      } else {
        // One documented difference: with no certificate HAProxy sends verify = 0, which the spec
        // reserves for "presented and verified"; the sink sends 1 (X509_V_ERR_UNSPECIFIED).
        expect(ours.slice(0, 2).map((b) => b.toString('hex'))).toEqual(theirs.slice(0, 2).map((b) => b.toString('hex')));
        const [ourSsl, theirSsl] = [ours[2]!, theirs[2]!];
        expect(theirSsl.readUInt32BE(4)).toBe(0);
        expect(ourSsl.readUInt32BE(4)).toBe(1);
        expect(Buffer.concat([ourSsl.subarray(0, 4), ourSsl.subarray(8)])).toEqual(Buffer.concat([theirSsl.subarray(0, 4), theirSsl.subarray(8)]));
      }
    });
  });
});
