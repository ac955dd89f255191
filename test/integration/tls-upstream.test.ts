import { describe, expect, it } from 'vitest';
import { startBalancer, type TestBalancer } from '../harness/balancer.ts';
import { skipReason } from '../harness/binaries.ts';
import { useTlsSuite } from '../harness/tls-suite.ts';
import { logLines, waitFor } from '../harness/poll.ts';
import { portOf, rejections, tlsListener } from '../harness/tls-listener.ts';
import { startTlsMosquitto, type TlsMosquitto } from '../harness/tls-mosquitto.ts';
import type { Running } from '../harness/traffic-processes.ts';

/**
 * Re-encryption: Debian's mosquitto with a TLS listener that requires a client certificate, as
 * the only backend; Tether reaches it with the tls-upstream sink. Clients are Debian's
 * mosquitto_sub/mosquitto_pub, connecting to Tether in plain MQTT or over TLS.
 */

const missing = ['openssl', 'mosquitto', 'mosquitto_sub', 'mosquitto_pub'].map(skipReason).join('');

const suite = useTlsSuite(missing);
const { teardown, tools } = suite;

async function broker(requireCertificate = true): Promise<TlsMosquitto> {
  return teardown.add('mosquitto', await startTlsMosquitto({ cert: suite.pki.alpha.cert, key: suite.pki.alpha.key, ca: suite.pki.ca.cert, requireCertificate }), (m) => m.stop());
}

async function balancerFor(m: TlsMosquitto, upstream: Record<string, unknown>, overrides: Record<string, unknown> = {}): Promise<TestBalancer> {
  return teardown.add('balancer', await startBalancer({
    backends: [`mosq1=127.0.0.1:${m.port}`],
    sinks: ['proxy-protocol', { use: 'tls-upstream', options: upstream }],
    ...overrides,
  }), (b) => b.close());
}

/** The client certificate Tether shows the broker, and the CA it checks the broker with. */
const upstreamTls = (): Record<string, unknown> => ({ backends: { mosq1: { ca: suite.pki.ca.cert, cert: suite.pki.tetherClient.cert, key: suite.pki.tetherClient.key } } });

/** Waits until `sub` is subscribed: a retained marker published straight to the broker reaches it. */
async function subscribed(sub: Running, m: TlsMosquitto): Promise<void> {
  const marker = await tools.run('mosquitto_pub', [...direct(m), '-t', 'up/ready', '-m', 'ready', '-r', '-q', '1']);
  expect(marker.code, marker.stderr).toBe(0);
  await sub.waitForLine(/^up\/ready ready$/);
}

/** mosquitto_pub/sub arguments for the broker itself, over TLS with a client certificate. */
const direct = (m: TlsMosquitto): string[] => ['-h', '127.0.0.1', '-p', String(m.port), '--cafile', suite.pki.ca.cert, '--cert', suite.pki.device2.cert, '--key', suite.pki.device2.key];

describe.skipIf(missing !== '')(`tls-upstream to a TLS mosquitto${missing}`, { timeout: 60_000 }, () => {
  it('a plain MQTT client reaches a broker that requires TLS and a client certificate', async () => {
    const m = await broker();
    const balancer = await balancerFor(m, upstreamTls());
    const sub = tools.spawn('mosquitto_sub', ['-h', '127.0.0.1', '-p', String(balancer.port), '-i', 'plain-sub', '-t', 'up/#', '-q', '1', '-v'], 30_000);
    await subscribed(sub, m);
    const pub = await tools.run('mosquitto_pub', [...direct(m), '-t', 'up/news', '-m', 're-encrypted', '-q', '1']);
    expect(pub.code, pub.stderr).toBe(0);
    await sub.waitForLine(/^up\/news re-encrypted$/);
    // The broker saw the subscriber arrive over TLS (it accepts nothing else).
    await m.waitForLog(/New client connected from 127\.0\.0\.1:\d+ as plain-sub/);
    expect(balancer.server.stats.get('tls_upstream_handshakes')).toBe(1);
  });

  it('TLS on both sides: mosquitto_pub over mqtts to Tether, re-encrypted to mosquitto', async () => {
    const m = await broker();
    const balancer = await balancerFor(m, upstreamTls(), { listeners: [tlsListener({ cert: suite.pki.alpha.cert, key: suite.pki.alpha.key })] });
    const sub = tools.spawn('mosquitto_sub', [...direct(m), '-i', 'direct-sub', '-t', 'up/#', '-q', '1', '-v'], 30_000);
    await subscribed(sub, m);
    const pub = await tools.run('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(portOf(balancer)), '--cafile', suite.pki.ca.cert, '-i', 'tls-pub', '-t', 'up/both', '-m', 'TLS in, TLS out', '-q', '1']);
    expect(pub.code, pub.stderr).toBe(0);
    await sub.waitForLine(/^up\/both TLS in, TLS out$/);
    expect(balancer.server.stats.get('tls_handshakes')).toBe(1);
    expect(balancer.server.stats.get('tls_upstream_handshakes')).toBe(1);
    // The broker's CONNACK was read from the decrypted stream on its way to the client.
    const closed = await waitFor(() => logLines(balancer.logs, { msg: 'connection closed', backend: 'mosq1' })[0], { what: 'the close line of tls-pub' });
    expect(closed).toMatchObject({ mqtt: { clientId: 'tls-pub' }, connack: { code: 0, reason: 'accepted', sessionPresent: false } });
  });

  it('without its client certificate, Tether is refused by the broker: the certificate is what lets it in', async () => {
    const m = await broker();
    const balancer = await balancerFor(m, { backends: { mosq1: { ca: suite.pki.ca.cert } } });
    const pub = await tools.run('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(balancer.port), '-i', 'no-client-cert', '-t', 'up/x', '-m', 'x', '-q', '1']);
    expect(pub.code).not.toBe(0);
    await m.waitForLog(/peer did not return a certificate/);
    expect(m.log()).not.toMatch(/as no-client-cert/);
  });

  it('a broker certificate from another CA is refused: the connection closes and the log says why', async () => {
    const m = await broker(false);
    const balancer = await balancerFor(m, { backends: { mosq1: { ca: suite.pki.otherCa.cert } } });
    const pub = await tools.run('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(balancer.port), '-i', 'distrusting', '-t', 'up/x', '-m', 'x', '-q', '1']);
    expect(pub.code).not.toBe(0);
    // mosquitto sends its chain up to our test CA (from its cafile), which the other CA does not know.
    const [line] = await rejections(balancer, 'plugin_error');
    expect(line!.err).toBe('plugin "tls-upstream" failed in attach: backend mosq1: TLS towards the broker failed: self-signed certificate in certificate chain (SELF_SIGNED_CERT_IN_CHAIN)');
    expect(balancer.server.stats.get('tls_upstream_handshake_failures')).toBe(1);
    expect(m.log()).not.toMatch(/as distrusting/);
  });

  it('a broker certificate for another name is refused, unless servername names it', async () => {
    const m = await broker(false);
    const wrong = await balancerFor(m, { backends: { mosq1: { ca: suite.pki.ca.cert, servername: 'beta.test' } } });
    const refused = await tools.run('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(wrong.port), '-i', 'wrong-name', '-t', 'up/x', '-m', 'x']);
    expect(refused.code).not.toBe(0);
    const [line] = await rejections(wrong, 'plugin_error');
    expect(line!.err).toMatch(/Host: beta\.test\. is not in the cert's altnames: DNS:alpha\.test, DNS:localhost, IP Address:127\.0\.0\.1 \(ERR_TLS_CERT_ALTNAME_INVALID\)$/);

    const right = await balancerFor(m, { backends: { mosq1: { ca: suite.pki.ca.cert, servername: 'alpha.test' } } });
    const ok = await tools.run('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(right.port), '-i', 'right-name', '-t', 'up/x', '-m', 'x']);
    expect(ok.code, ok.stderr).toBe(0);
    await waitFor(() => logLines(right.logs, { msg: 'connection closed', backend: 'mosq1' }).length === 1, { what: 'the connection to be closed normally' });
  });
});
