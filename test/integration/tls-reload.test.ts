import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startEmbeddedBrokers } from '@tether/embedded-broker';
import { describe, expect, it } from 'vitest';
import { killAll, runTether, startTether, type RunningTether } from '../../cli/test/helpers/cli.ts';
import { startBalancer, type TestBalancer } from '../harness/balancer.ts';
import { skipReason } from '../harness/binaries.ts';
import { useTlsSuite } from '../harness/tls-suite.ts';
import { logLines, waitFor } from '../harness/poll.ts';
import type { CertFiles } from '../harness/tls-certs.ts';
import { portOf, tlsListener } from '../harness/tls-listener.ts';
import { sClient, serialOf } from '../harness/tls-tools.ts';
import { Inbox } from '../harness/traffic-mqtt-clients.ts';

/**
 * Certificate rotation without a restart: new handshakes get the new certificate after SIGHUP or
 * a file change, established connections keep working, and a reload that cannot load keeps the
 * old certificates and says why in one log line. In process, and through `tether start`.
 */

const missing = skipReason('openssl');

const suite = useTlsSuite(missing, killAll);
const { teardown, pool, tools } = suite;

/** The server certificate files a test rotates: copies of `alpha` in a directory of their own. */
function liveFiles(): { cert: string; key: string; install(from: CertFiles): void } {
  const dir = mkdtempSync(join(suite.pki.dir, 'live-'));
  const cert = join(dir, 'server.pem');
  const key = join(dir, 'server.key');
  const install = (from: CertFiles): void => {
    copyFileSync(from.cert, cert);
    copyFileSync(from.key, key);
  };
  install(suite.pki.alpha);
  teardown.defer('live certificate files', () => rmSync(dir, { recursive: true, force: true }));
  return { cert, key, install };
}

async function served(port: number): Promise<string | undefined> {
  const r = await sClient(tools, port, ['-CAfile', suite.pki.ca.cert, '-servername', 'alpha.test']);
  expect(r.verifyCode, r.stdout).toBe(0);
  return serialOf(r.served);
}

/** A subscriber over TLS and a way to check it still receives: publish through a new TLS connection. */
async function establishedSubscriber(url: string): Promise<{ stillWorks(text: string): Promise<void> }> {
  const inbox = new Inbox();
  const ca = readFileSync(suite.pki.ca.cert);
  const { client } = await pool.connect(url, { clientId: 'long-lived', ca }, inbox);
  await client.subscribeAsync('rotation/#', { qos: 1 });
  return {
    async stillWorks(text) {
      const { client: publisher } = await pool.connect(url, { clientId: `publisher-${text}`, ca });
      await publisher.publishAsync('rotation/check', text, { qos: 1 });
      await inbox.until(`"${text}" on the long-lived connection`, (ms) => ms.some((m) => m.payload.toString() === text));
      expect(client.connected).toBe(true);
    },
  };
}

const reloaded = (b: TestBalancer, trigger: string): Record<string, unknown>[] => logLines(b.logs, { msg: 'TLS certificates reloaded; new handshakes use them', trigger });
const failed = (b: TestBalancer): Record<string, unknown>[] => logLines(b.logs, { msg: 'TLS certificate reload failed; keeping the certificates in use' });

describe.skipIf(missing !== '')(`TLS certificate reload${missing}`, { timeout: 90_000 }, () => {
  async function setup(watch: boolean): Promise<{ balancer: TestBalancer; port: number; files: ReturnType<typeof liveFiles> }> {
    const files = liveFiles();
    // One broker: the check message and the subscriber must meet.
    const [broker] = teardown.add('broker', await startEmbeddedBrokers(1), (bs) => Promise.all(bs.map((b) => b.close())));
    const balancer = teardown.add('balancer', await startBalancer({
      backends: [`${broker!.id}=127.0.0.1:${broker!.port}`],
      listeners: [tlsListener({ cert: files.cert, key: files.key, watch, watchDebounce: '200ms' })],
    }), (b) => b.close());
    return { balancer, port: portOf(balancer), files };
  }

  it('a configuration reload (SIGHUP): the next handshake gets the new certificate, the established connection keeps working', async () => {
    const { balancer, port, files } = await setup(false);
    const sub = await establishedSubscriber(`mqtts://127.0.0.1:${port}`);
    expect(await served(port)).toBe(suite.pki.alpha.serial);

    files.install(suite.pki.alphaNext);
    // What SIGHUP does in `tether start`: the configuration is reloaded, and the TLS transport with it.
    expect((await balancer.server.reload('SIGHUP')).ok).toBe(true);
    expect(reloaded(balancer, 'reload')).toHaveLength(1);
    expect(await served(port)).toBe(suite.pki.alphaNext.serial);
    await sub.stillWorks('after-sighup');
    expect(balancer.server.stats.get('tls_reloads')).toBe(1);
  });

  it('a changed file reloads by itself', async () => {
    const { balancer, port, files } = await setup(true);
    const sub = await establishedSubscriber(`mqtts://127.0.0.1:${port}`);
    files.install(suite.pki.alphaNext);
    await waitFor(() => reloaded(balancer, 'file change').length >= 1, { what: 'the reload after the file change' });
    expect(await served(port)).toBe(suite.pki.alphaNext.serial);
    await sub.stillWorks('after-file-change');
  });

  it('a reload that fails (key of another certificate, missing file) keeps the old certificate and logs one line why', async () => {
    const { balancer, port, files } = await setup(false);
    copyFileSync(suite.pki.beta.key, files.key);
    await balancer.server.reload('SIGHUP');
    expect(failed(balancer)).toHaveLength(1);
    expect(failed(balancer)[0]).toMatchObject({ level: 50, trigger: 'reload', err: `certificate ${files.cert} with key ${files.key}: key values mismatch` });
    expect(await served(port)).toBe(suite.pki.alpha.serial);

    rmSync(files.key);
    await balancer.server.reload('SIGHUP');
    expect(failed(balancer)[1]).toMatchObject({ err: `key ${files.key} cannot be read: no such file` });
    writeFileSync(files.cert, 'garbage');
    await balancer.server.reload('SIGHUP');
    expect(failed(balancer)[2]).toMatchObject({ err: `certificate ${files.cert} is not a PEM file (no "-----BEGIN" line)` });
    expect(await served(port)).toBe(suite.pki.alpha.serial);
    expect(balancer.server.stats.get('tls_reload_failures')).toBe(3);
    expect(balancer.server.stats.get('tls_reloads')).toBe(0);
  });
});

describe.skipIf(missing !== '')(`tether start --tls-listen${missing}`, { timeout: 90_000 }, () => {
  it('serves TLS next to the plain listener, and reloads on SIGHUP without stopping', async () => {
    const files = liveFiles();
    const tether: RunningTether = await startTether(['--listen', '127.0.0.1:0', '--tls-listen', '127.0.0.1:0', '--tls-cert', files.cert, '--tls-key', files.key]);
    const listeners = tether.listening.listeners as Record<string, string>;
    expect(Object.keys(listeners)).toEqual(['main', 'tls']);
    const port = Number(listeners.tls!.split(':').pop());
    // The embedded brokers are a cluster, so the publisher may land on either.
    const sub = await establishedSubscriber(`mqtts://127.0.0.1:${port}`);
    await pool.connect(tether.url, { clientId: 'plain-too' });
    expect(await served(port)).toBe(suite.pki.alpha.serial);

    files.install(suite.pki.alphaNext);
    process.kill(tether.pid, 'SIGHUP');
    await tether.waitForLog((l) => l.msg === 'TLS certificates reloaded; new handshakes use them' && l.trigger === 'reload');
    await tether.waitForLog((l) => l.msg === 'configuration reloaded' && l.trigger === 'SIGHUP' && l.generation === 2);
    expect(await served(port)).toBe(suite.pki.alphaNext.serial);
    await sub.stillWorks('after-cli-sighup');
    expect(tether.child.exitCode).toBeNull();
    expect((await tether.stop()).code).toBe(0);
  });

  it('mutual TLS from flags: --tls-ca asks for client certificates (verify required)', async () => {
    const tether = await startTether(['--listen', '127.0.0.1:0', '--tls-listen', '127.0.0.1:0', '--tls-cert', suite.pki.alpha.cert, '--tls-key', suite.pki.alpha.key, '--tls-ca', suite.pki.ca.cert]);
    const port = Number((tether.listening.listeners as Record<string, string>).tls!.split(':').pop());
    const ca = readFileSync(suite.pki.ca.cert);
    await pool.connect(`mqtts://127.0.0.1:${port}`, { clientId: 'with-cert', ca, cert: readFileSync(suite.pki.device1.cert), key: readFileSync(suite.pki.device1.key) });
    await expect(pool.connect(`mqtts://127.0.0.1:${port}`, { clientId: 'without-cert', ca })).rejects.toThrow();
    await tether.waitForLog((l) => l.msg === 'connection rejected' && l.reason === 'tls_bad_client_cert');
  });

  it('validate shows the TLS listener; incomplete TLS flags are usage errors', async () => {
    const ok = await runTether(['validate', '--tls-listen', '127.0.0.1:8883', '--tls-cert', suite.pki.alpha.cert, '--tls-key', suite.pki.alpha.key]);
    expect(ok.stderr).toBe('');
    expect(ok.stdout).toMatch(/listen {3}127\.0\.0\.1:1883, tls=127\.0\.0\.1:8883 \(tls\)/);
    const cases: [string[], string][] = [
      [['--tls-listen', '127.0.0.1:8883'], 'tether: --tls-listen needs --tls-cert FILE and --tls-key FILE'],
      [['--tls-cert', suite.pki.alpha.cert], 'tether: --tls-cert needs --tls-listen HOST:PORT or --wss-listen HOST:PORT'],
      [['--wss-listen', '127.0.0.1:8084'], 'tether: --wss-listen needs --tls-cert FILE and --tls-key FILE'],
      [['--tls-listen', '127.0.0.1:8883', '--tls-cert', suite.pki.alpha.cert, '--tls-key', suite.pki.alpha.key, '--tls-verify', 'optional'], 'tether: --tls-verify optional needs --tls-ca FILE, the CA that client certificates must chain to'],
      [['--tls-listen', '127.0.0.1:8883', '--tls-cert', suite.pki.alpha.cert, '--tls-key', suite.pki.alpha.key, '--tls-verify', 'sometimes'], 'tether: --tls-verify must be one of none, optional, required; got "sometimes"'],
    ];
    for (const [args, message] of cases) {
      const r = await runTether(['validate', ...args]);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr.trim()).toBe(message);
    }
    const bad = await runTether(['validate', '--tls-listen', '127.0.0.1:8883', '--tls-cert', suite.pki.alpha.cert, '--tls-key', suite.pki.beta.key]);
    expect(bad.code).toBe(1);
    expect(bad.stderr.trim()).toBe(`tether: plugin "tls": create() failed: certificate ${suite.pki.alpha.cert} with key ${suite.pki.beta.key}: key values mismatch`);
  });
});
