import type { Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { startBalancer } from '../harness/balancer.ts';
import { skipReason } from '../harness/binaries.ts';
import { freePort } from '../harness/free-port.ts';
import { HaAedes } from '../harness/ha-aedes.ts';
import { makeTestPki } from '../harness/haproxy-certs.ts';
import { haproxyPreamble, HaproxyProcess } from '../harness/haproxy-process.ts';
import { ClientPool, Inbox } from '../harness/traffic-mqtt-clients.ts';
import { Teardown } from '../harness/traffic-teardown.ts';

/**
 * The seed's 8883 listener behind an L4 balancer, every hop real:
 *
 *   mqtts client ──TLS──► HAProxy `front` (mode tcp, send-proxy-v2)
 *     ──PROXY v2 + TLS──► Tether listener [proxy-in, tls]
 *     ──PROXY v2 with TLVs (sink)──► HAProxy `back` (accept-proxy) ──► aedes
 *
 * proxy-in must read the header and leave the TLS bytes to the tls transport; the sink must then
 * tell the broker side the ORIGINAL client (two hops back) and the TLS facts of the handshake
 * Tether terminated, which HAProxy decodes (fc_pp_authority, fc_pp_unique_id).
 */

const missing = skipReason('haproxy') || skipReason('openssl');
const teardown = new Teardown();
const pool = new ClientPool();
afterEach(async () => {
  await pool.closeAll();
  await teardown.run();
}, 30_000);

describe.skipIf(missing !== '')(`proxy-in before tls, behind HAProxy${missing}`, { timeout: 60_000 }, () => {
  it('a mutual-TLS MQTT client through HAProxy and Tether: the broker side is told the client, its SNI and a unique id', async () => {
    const pki = teardown.add('pki', makeTestPki('device-42'), (p) => p.close());
    const broker = teardown.add('aedes', await HaAedes.start('aedes'), (b) => b.close());
    const backPort = await freePort();
    const balancer = teardown.add('balancer', await startBalancer({
      listeners: [{
        name: 'mqtts',
        address: '127.0.0.1:0',
        transports: [
          { use: 'proxy-in', options: { trustedSources: ['127.0.0.1'] } },
          { use: 'tls', options: { cert: pki.serverCertFile, key: pki.serverKeyFile, ca: pki.caFile, verify: 'optional', alpn: ['mqtt'] } },
        ],
      }],
      backends: [{ name: 'back', address: `127.0.0.1:${backPort}`, sendProxy: 'v2' }],
      sinks: [{ use: 'proxy-protocol', options: { tlvs: ['alpn', 'authority', 'unique-id', 'ssl', 'crc32c'] } }],
    }), (b) => b.close());
    const frontPort = await freePort();
    const haproxy = teardown.add('haproxy', await HaproxyProcess.start(`${haproxyPreamble('%f %ci:%cp authority=%[fc_pp_authority] uid=%[fc_pp_unique_id]')}
listen front
  bind 127.0.0.1:${frontPort}
  server tether 127.0.0.1:${balancer.server.addresses.get('mqtts')!.port} send-proxy-v2
listen back
  bind 127.0.0.1:${backPort} accept-proxy
  server broker 127.0.0.1:${broker.port}
`, [frontPort, backPort]), (h) => h.close());

    const inbox = new Inbox();
    const { client, connack } = await pool.connect(undefined, {
      host: '127.0.0.1', port: frontPort, protocol: 'mqtts', clientId: 'tls-behind-lb', clean: true,
      servername: 'broker.test', ALPNProtocols: ['mqtt'], ca: pki.ca, cert: pki.clientCert, key: pki.clientKey,
    }, inbox);
    expect(connack.returnCode).toBe(0);
    const { localPort } = client.stream as Socket;
    await client.subscribeAsync('lb/tls', { qos: 1 });
    await client.publishAsync('lb/tls', 'end to end', { qos: 1 });
    await inbox.until('the message back', (m) => m.length >= 1);
    expect(broker.holds('tls-behind-lb')).toBe(true);
    expect(balancer.server.stats.snapshot()).toMatchObject({ proxy_in_header_v2: 1, proxy_protocol_sent_v2: 1 });

    await pool.disconnect(client);
    const [line] = await haproxy.waitForLines(new RegExp(`^back 127\\.0\\.0\\.1:${localPort} `));
    expect(line).toMatch(new RegExp(`^back 127\\.0\\.0\\.1:${localPort} authority=broker\\.test uid=[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`));
  });
});
