import { readFileSync } from 'node:fs';
import { startEmbeddedBrokers } from '@tether/embedded-broker';
import { describe, expect, it } from 'vitest';
import { startBalancer, tableEntries, type TestBalancer } from '../harness/balancer.ts';
import { skipReason } from '../harness/binaries.ts';
import { useTlsSuite } from '../harness/tls-suite.ts';
import { logLines, waitFor } from '../harness/poll.ts';
import type { CertFiles } from '../harness/tls-certs.ts';
import { factsOf, portOf, rejections, TLS_FACTS_PROBE, tlsListener } from '../harness/tls-listener.ts';
import { sClient } from '../harness/tls-tools.ts';
import { AedesWitness } from '../harness/traffic-aedes-witness.ts';

/**
 * Mutual TLS: client certificates checked against the listener's CA (verify: required and
 * optional), refused with OpenSSL's reason when missing, expired or from another CA, and the
 * certificate's CN as the stickiness key (cert-cn). Clients: Debian's mosquitto_pub and openssl
 * s_client, and mqtt.js; brokers: independent aedes instances, which say where a client landed.
 */

const missing = ['openssl', 'mosquitto_pub'].map(skipReason).join('');

const suite = useTlsSuite(missing);
const { teardown, pool, tools } = suite;

async function setup(verify: 'optional' | 'required', overrides: Record<string, unknown> = {}): Promise<{ balancer: TestBalancer; witness: AedesWitness; port: number }> {
  const brokers = teardown.add('brokers', await startEmbeddedBrokers(2, { cluster: false }), (bs) => Promise.all(bs.map((b) => b.close())));
  const witness = teardown.add('witness', new AedesWitness(brokers), (w) => w.detach());
  const balancer = teardown.add('balancer', await startBalancer({
    backends: brokers.map((b) => `${b.id}=127.0.0.1:${b.port}`),
    listeners: [tlsListener({ cert: suite.pki.alpha.cert, key: suite.pki.alpha.key, ca: suite.pki.ca.cert, verify })],
    ...overrides,
  }), (b) => b.close());
  return { balancer, witness, port: portOf(balancer) };
}

/** mosquitto_pub through the TLS listener, with a client certificate or none. */
function publish(port: number, clientId: string, cert?: CertFiles): Promise<{ code: number | null; stderr: string }> {
  return tools.run('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(port), '--cafile', suite.pki.ca.cert,
    ...(cert ? ['--cert', cert.cert, '--key', cert.key] : []), '-i', clientId, '-t', 'mtls/test', '-m', 'hi', '-q', '1']);
}

const mqttsOptions = (clientId: string, cert: CertFiles) => ({ clientId, ca: readFileSync(suite.pki.ca.cert), cert: readFileSync(cert.cert), key: readFileSync(cert.key) });

describe.skipIf(missing !== '')(`mutual TLS${missing}`, { timeout: 60_000 }, () => {
  it('verify: required: mosquitto_pub with a certificate of the CA gets through; without one, or with an expired or foreign one, it is refused', async () => {
    const { balancer, witness, port } = await setup('required');
    const landed = witness.nextLanding('good-device');
    const good = await publish(port, 'good-device', suite.pki.device1);
    expect(good.code, good.stderr).toBe(0);
    await landed;

    expect((await publish(port, 'no-cert')).code).not.toBe(0);
    const [none] = await rejections(balancer, 'tls_bad_client_cert', 1);
    expect(none).toMatchObject({ code: 'TETHER_ERR_TLS_BAD_CLIENT_CERT', err: 'client certificate rejected: the client sent no certificate and verify is required' });

    expect((await publish(port, 'expired-device', suite.pki.expired)).code).not.toBe(0);
    const lines = await rejections(balancer, 'tls_bad_client_cert', 2);
    expect(lines[1]).toMatchObject({ err: 'client certificate rejected: CN=device-expired: CERT_HAS_EXPIRED (certificate has expired)' });

    expect((await publish(port, 'foreign-device', suite.pki.foreign)).code).not.toBe(0);
    const all = await rejections(balancer, 'tls_bad_client_cert', 3);
    expect(all[2]!.err).toMatch(/^client certificate rejected: CN=device-foreign: UNABLE_TO_VERIFY_LEAF_SIGNATURE/);

    // None of the refused clients reached a broker; the good one did, once.
    expect(witness.landings.map((l) => l.clientId)).toEqual(['good-device']);
    expect(balancer.server.stats.get('connections_rejected')).toBe(3);
  });

  it('openssl s_client sees the CA names asked for, and completes with a client certificate', async () => {
    const { balancer, port } = await setup('required');
    const withCert = await sClient(tools, port, ['-CAfile', suite.pki.ca.cert, '-cert', suite.pki.device1.cert, '-key', suite.pki.device1.key]);
    expect(withCert.verifyCode).toBe(0);
    expect(withCert.stdout).toMatch(/Acceptable client certificate CA names\s*\nCN = Tether Test CA/);
    // s_client sends no MQTT, so the connection ends as a CONNECT-less client, after a complete handshake.
    await waitFor(() => balancer.server.stats.get('tls_handshakes') === 1, { what: 'the handshake to be counted' });
    await sClient(tools, port, ['-CAfile', suite.pki.ca.cert]);
    await rejections(balancer, 'tls_bad_client_cert');
    expect(balancer.server.stats.get('tls_handshakes')).toBe(1);
  });

  it('verify: optional lets clients without a valid certificate in, and the facts say so', async () => {
    const { balancer, port } = await setup('optional', { plugins: [TLS_FACTS_PROBE], key: ['tls-facts-probe', 'cert-cn', 'client-id'] });
    await pool.connect(`mqtts://127.0.0.1:${port}`, mqttsOptions('valid', suite.pki.device1));
    await pool.connect(`mqtts://127.0.0.1:${port}`, mqttsOptions('expired', suite.pki.expired));
    await pool.connect(`mqtts://127.0.0.1:${port}`, { clientId: 'anonymous', ca: readFileSync(suite.pki.ca.cert) });
    expect(await factsOf(balancer, 'valid')).toMatchObject({ peerCN: 'device-1', verified: true, peerSAN: ['DNS:device-1.devices.test', 'email:device-1@devices.test', 'URI:urn:device:device-1'] });
    expect(await factsOf(balancer, 'expired')).toMatchObject({ peerCN: 'device-expired', verified: false, verifyError: 'CERT_HAS_EXPIRED' });
    expect(await factsOf(balancer, 'anonymous')).toEqual(expect.objectContaining({ peerSAN: [], verified: false }));
    // cert-cn (verifiedOnly) keys only the verified client; the others fall through to client-id.
    const sniffed = (clientId: string) => logLines(balancer.logs, { msg: 'connect sniffed' }).find((l) => (l.mqtt as { clientId: string }).clientId === clientId);
    expect(sniffed('valid')).toMatchObject({ key: 'device-1', keySource: 'cert-cn' });
    expect(sniffed('expired')).toMatchObject({ key: 'expired', keySource: 'client-id' });
    expect(sniffed('anonymous')).toMatchObject({ key: 'anonymous', keySource: 'client-id' });
    expect(balancer.server.stats.get('connections_rejected')).toBe(0);
  });

  it('cert-cn: each device sticks to its broker by certificate, whatever client id it uses', async () => {
    const { balancer, witness, port } = await setup('required', { key: ['cert-cn'] });
    const home = new Map<string, string>();
    for (const [device, cert] of [['device-1', suite.pki.device1], ['device-2', suite.pki.device2]] as const) {
      const landed = witness.nextLanding(`${device}-first`);
      const { client } = await pool.connect(`mqtts://127.0.0.1:${port}`, mqttsOptions(`${device}-first`, cert));
      home.set(device, (await landed).broker);
      await pool.disconnect(client);
    }
    // least-connections spread the two devices; from now on the stick table decides.
    expect(new Set(home.values()).size).toBe(2);
    for (let round = 1; round <= 3; round++) {
      for (const [device, cert] of [['device-1', suite.pki.device1], ['device-2', suite.pki.device2]] as const) {
        const clientId = `${device}-round-${round}`;
        const landed = witness.nextLanding(clientId);
        const { client } = await pool.connect(`mqtts://127.0.0.1:${port}`, mqttsOptions(clientId, cert));
        expect((await landed).broker, `${clientId}`).toBe(home.get(device));
        await pool.disconnect(client);
      }
    }
    const entries = await tableEntries(balancer);
    expect(entries.map((e) => [e.key, e.backend]).sort()).toEqual([...home].sort());
  });
});
