import { X509Certificate } from 'node:crypto';
import type { ProcessGroup } from './traffic-processes.ts';

/** What `openssl s_client` reported about one handshake. */
export interface SClientResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  /** The certificate the server sent (the first one of the chain), when the handshake got that far. */
  readonly served: X509Certificate | undefined;
  /** `Verify return code: 0 (ok)` → 0. */
  readonly verifyCode: number | undefined;
  /** `New, TLSv1.3, Cipher is ...` → TLSv1.3. */
  readonly protocol: string | undefined;
  readonly alpn: string | undefined;
}

/**
 * Runs Debian's `openssl s_client` against a loopback port with `args` (-servername, -CAfile,
 * -cert/-key, -alpn, ...). Its stdin is empty, so it closes right after the handshake. Bounded and
 * killed by PID through the ProcessGroup.
 */
export async function sClient(tools: ProcessGroup, port: number, args: readonly string[]): Promise<SClientResult> {
  const r = await tools.run('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, ...args], 20_000);
  const pem = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(r.stdout)?.[0];
  const verify = /Verify return code: (\d+)/.exec(r.stdout)?.[1];
  return {
    code: r.code,
    stdout: r.stdout,
    stderr: r.stderr,
    served: pem ? new X509Certificate(pem) : undefined,
    verifyCode: verify === undefined ? undefined : Number(verify),
    protocol: /^New, (TLSv[\d.]+),/m.exec(r.stdout)?.[1],
    alpn: /^ALPN protocol: (\S+)/m.exec(r.stdout)?.[1],
  };
}

/** The serial of a certificate, as the test PKI records it. */
export function serialOf(cert: X509Certificate | undefined): string | undefined {
  return cert?.serialNumber.toUpperCase();
}
