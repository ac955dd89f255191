import { readFileSync, writeFileSync } from 'node:fs';
import { connect as tcpConnect } from 'node:net';
import { join } from 'node:path';
import { startEmbeddedBrokers, type EmbeddedBroker } from '@tether/embedded-broker';
import { describe, expect, it } from 'vitest';
import { startBalancer, type TestBalancer } from '../harness/balancer.ts';
import { skipReason } from '../harness/binaries.ts';
import { useTlsSuite } from '../harness/tls-suite.ts';
import { logLines, waitFor } from '../harness/poll.ts';
import { factsOf, portOf, rejections, TLS_FACTS_PROBE, tlsListener } from '../harness/tls-listener.ts';
import { sClient, serialOf } from '../harness/tls-tools.ts';
import { AedesWitness } from '../harness/traffic-aedes-witness.ts';
import { withTimeout } from '../harness/traffic-wait.ts';

/**
 * TLS termination with real peers: Debian's openssl s_client (which certificate is served for
 * which SNI), mosquitto_sub/mosquitto_pub and mqtt.js over mqtts, in front of independent aedes
 * brokers. Certificates come from a throw-away CA made with openssl for this file.
 */

const missing = ['openssl', 'mosquitto_sub', 'mosquitto_pub'].map(skipReason).join('');

const suite = useTlsSuite(missing);
const { teardown, pool, tools } = suite;

interface Setup {
  readonly brokers: EmbeddedBroker[];
  readonly witness: AedesWitness;
  readonly balancer: TestBalancer;
  readonly tlsPort: number;
}

async function setup(tls: Record<string, unknown> = {}, overrides: Record<string, unknown> = {}, file?: string): Promise<Setup> {
  const brokers = teardown.add('brokers', await startEmbeddedBrokers(2, { cluster: false }), (bs) => Promise.all(bs.map((b) => b.close())));
  const witness = teardown.add('witness', new AedesWitness(brokers), (w) => w.detach());
  const balancer = teardown.add('balancer', await startBalancer({
    backends: brokers.map((b) => `${b.id}=127.0.0.1:${b.port}`),
    ...(file ? {} : { listeners: [tlsListener({ cert: suite.pki.alpha.cert, key: suite.pki.alpha.key, ...tls })] }),
    ...overrides,
  }, file), (b) => b.close());
  return { brokers, witness, balancer, tlsPort: portOf(balancer) };
}

const ca = (): Buffer => readFileSync(suite.pki.ca.cert);

describe.skipIf(missing !== '')(`TLS termination${missing}`, { timeout: 60_000 }, () => {
  it('the seed layout: plain MQTT on one listener and MQTT over TLS on another, from one config file', async () => {
    // The deployment's 1883 + 8883, on free ports: `listen` is the plain listener, `listeners`
    // adds the TLS one. Both reach the same brokers through the same stick table.
    const file = join(suite.pki.dir, 'seed-tls.yaml');
    writeFileSync(file, [
      'listen: 127.0.0.1:0            # 0.0.0.0:1883 in production',
      'listeners:',
      '  - name: mqtts',
      '    address: 127.0.0.1:0       # 0.0.0.0:8883 in production',
      '    transports:',
      '      - use: tls',
      '        options:',
      `          cert: ${suite.pki.alpha.cert}`,
      `          key: ${suite.pki.alpha.key}`,
      '',
    ].join('\n'));
    const brokers = teardown.add('brokers', await startEmbeddedBrokers(2, { cluster: false }), (bs) => Promise.all(bs.map((b) => b.close())));
    const witness = teardown.add('witness', new AedesWitness(brokers), (w) => w.detach());
    const balancer = teardown.add('balancer', await startBalancer({ backends: brokers.map((b) => `${b.id}=127.0.0.1:${b.port}`) }, file), (b) => b.close());
    expect([...balancer.server.addresses.keys()]).toEqual(['main', 'mqtts']);

    const plainLanding = witness.nextLanding('plain-1');
    await pool.connect(`mqtt://127.0.0.1:${balancer.port}`, { clientId: 'plain-1' });
    const tlsLanding = witness.nextLanding('secure-1');
    await pool.connect(`mqtts://127.0.0.1:${portOf(balancer, 'mqtts')}`, { clientId: 'secure-1', ca: ca() });
    expect([(await plainLanding).broker, (await tlsLanding).broker].sort()).toEqual(['embedded1', 'embedded2']);
    expect(balancer.server.stats.get('tls_handshakes')).toBe(1);
    expect(balancer.server.stats.get('connections_spliced')).toBe(2);

    // The secure client comes back with the same client id: the shared stick table sends it home.
    await pool.closeAll();
    const again = witness.nextLanding('secure-1');
    await pool.connect(`mqtts://127.0.0.1:${portOf(balancer, 'mqtts')}`, { clientId: 'secure-1', ca: ca() });
    expect((await again).broker).toBe((await tlsLanding).broker);
  });

  it('openssl s_client: the certificate served follows the SNI; no SNI or an unknown one gets the default', async () => {
    const { tlsPort } = await setup({ certificates: [{ cert: suite.pki.beta.cert, key: suite.pki.beta.key }] });
    const asks = async (sni: string[]): Promise<string | undefined> => {
      const r = await sClient(tools, tlsPort, ['-CAfile', suite.pki.ca.cert, ...sni]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.verifyCode, r.stdout).toBe(0);
      return serialOf(r.served);
    };
    expect(await asks(['-servername', 'beta.test'])).toBe(suite.pki.beta.serial);
    expect(await asks(['-servername', 'alpha.test'])).toBe(suite.pki.alpha.serial);
    expect(await asks(['-noservername'])).toBe(suite.pki.alpha.serial);
    const unknown = await sClient(tools, tlsPort, ['-CAfile', suite.pki.ca.cert, '-servername', 'gamma.test']);
    expect(serialOf(unknown.served)).toBe(suite.pki.alpha.serial);
  });

  it('strictSni: an unknown server name is refused during the handshake, with its own reason', async () => {
    const { balancer, tlsPort } = await setup({ strictSni: true, certificates: [{ cert: suite.pki.beta.cert, key: suite.pki.beta.key }] });
    const refused = await sClient(tools, tlsPort, ['-CAfile', suite.pki.ca.cert, '-servername', 'gamma.test']);
    expect(refused.served).toBeUndefined();
    const [line] = await rejections(balancer, 'tls_unknown_sni');
    expect(line).toMatchObject({ level: 40, listener: 'tls', code: 'TETHER_ERR_TLS_UNKNOWN_SNI', err: 'no certificate for server name "gamma.test" (strictSni)' });
    const known = await sClient(tools, tlsPort, ['-CAfile', suite.pki.ca.cert, '-servername', 'beta.test']);
    expect(serialOf(known.served)).toBe(suite.pki.beta.serial);
  });

  it('mqtt.js over mqtts: the extractors see the TLS facts (protocol, SNI, ALPN)', async () => {
    const { balancer, tlsPort, witness } = await setup({ alpn: ['mqtt'] }, { plugins: [TLS_FACTS_PROBE], key: ['tls-facts-probe', 'client-id'] });
    const landing = witness.nextLanding('facts-1');
    await pool.connect(`mqtts://127.0.0.1:${tlsPort}`, { clientId: 'facts-1', ca: ca(), servername: 'localhost', ALPNProtocols: ['mqtt'] });
    await landing;
    expect(await factsOf(balancer, 'facts-1')).toEqual({
      protocol: 'TLSv1.3', cipher: expect.stringMatching(/^TLS_AES_|^TLS_CHACHA20_/), servername: 'localhost', alpn: 'mqtt',
      peerSAN: [], verified: false,
    });
  });

  it('mosquitto_sub and mosquitto_pub with --cafile through the TLS listener', async () => {
    // key: username, so publisher and subscriber share a stick entry and meet on one broker.
    const { balancer, tlsPort } = await setup({}, { key: ['username', 'client-id'] });
    const tlsArgs = ['-h', '127.0.0.1', '-p', String(tlsPort), '--cafile', suite.pki.ca.cert, '-u', 'alice'];
    const sub = tools.spawn('mosquitto_sub', [...tlsArgs, '-i', 'alice-sub', '-t', 'tls/#', '-q', '1', '-v', '-C', '1'], 30_000);
    await waitFor(() => balancer.server.stats.get('connections_spliced') >= 1, { what: 'mosquitto_sub to be spliced to a broker' });
    // Retained, so it arrives whether the SUBSCRIBE is processed before or after it.
    const pub = await tools.run('mosquitto_pub', [...tlsArgs, '-i', 'alice-pub', '-t', 'tls/hello', '-m', 'over TLS both ways', '-q', '1', '-r']);
    expect(pub.code, pub.stderr).toBe(0);
    expect(await sub.waitForLine(/^tls\/hello /)).toBe('tls/hello over TLS both ways');
    expect((await sub.exited).code).toBe(0);
    expect(balancer.server.stats.get('tls_handshakes')).toBeGreaterThanOrEqual(2);
  });

  it('plaintext MQTT on the TLS port is refused at its first byte, and the listener goes on', async () => {
    const { balancer, tlsPort } = await setup({ handshakeTimeout: '60s' });
    const started = Date.now();
    await expect(pool.connect(`mqtt://127.0.0.1:${tlsPort}`, { clientId: 'plain-on-tls' }, undefined, 20_000)).rejects.toThrow();
    // Far below the 60 s handshake timeout: it did not wait for a ClientHello that never comes.
    expect(Date.now() - started).toBeLessThan(15_000);
    const lines = await rejections(balancer, 'tls_plaintext');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ code: 'TETHER_ERR_TLS_PLAINTEXT', err: 'plaintext MQTT (a CONNECT packet) on a TLS listener; use TLS (mqtts) on this port, or the plain listener' });
    await pool.connect(`mqtts://127.0.0.1:${tlsPort}`, { clientId: 'after', ca: ca() });
    expect(balancer.server.stats.get('connections_spliced')).toBe(1);
  });

  it('a client that never finishes its handshake is closed after handshakeTimeout', async () => {
    const { balancer, tlsPort } = await setup({ handshakeTimeout: '400ms' });
    const silent = tcpConnect({ host: '127.0.0.1', port: tlsPort });
    silent.on('error', () => undefined);
    teardown.defer('silent socket', () => silent.destroy());
    const closed = new Promise<void>((resolve) => silent.once('close', () => resolve()));
    await withTimeout(closed, 10_000, 'the silent client to be closed');
    const [line] = await rejections(balancer, 'tls_handshake_timeout');
    expect(line).toMatchObject({ code: 'TETHER_ERR_TLS_HANDSHAKE_TIMEOUT', err: 'TLS handshake not finished within 400 ms (no data from the client)' });
  });

  it('minVersion: a client limited to older versions fails the handshake, with OpenSSL\'s reason', async () => {
    const { balancer, tlsPort } = await setup({ minVersion: 'TLSv1.3' });
    const old = await sClient(tools, tlsPort, ['-CAfile', suite.pki.ca.cert, '-tls1_2']);
    expect(old.served).toBeUndefined();
    const [line] = await rejections(balancer, 'tls_handshake_failed');
    expect(line!.err).toMatch(/^TLS handshake failed: unsupported protocol/);
    const current = await sClient(tools, tlsPort, ['-CAfile', suite.pki.ca.cert]);
    expect(current.protocol).toBe('TLSv1.3');
  });

  it('closing the balancer closes its TLS clients', async () => {
    const { balancer, tlsPort } = await setup();
    const { client } = await pool.connect(`mqtts://127.0.0.1:${tlsPort}`, { clientId: 'to-be-closed', ca: ca() });
    const gone = new Promise<void>((resolve) => client.once('close', () => resolve()));
    await balancer.close();
    await withTimeout(gone, 10_000, 'the TLS client to be disconnected');
    expect(logLines(balancer.logs, { msg: 'tether stopped' })).toHaveLength(1);
  });
});
