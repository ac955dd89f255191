import { spawn } from 'node:child_process';
import { chmodSync, copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { freePort } from './free-port.ts';
import { withTimeout } from './traffic-wait.ts';

export interface TlsMosquittoOptions {
  /** The broker's certificate and key. */
  readonly cert: string;
  readonly key: string;
  /** CA bundle for client certificates (mosquitto's cafile). */
  readonly ca: string;
  /** require_certificate: refuse clients without a certificate of `ca`. */
  readonly requireCertificate: boolean;
}

export interface TlsMosquitto {
  readonly port: number;
  readonly pid: number;
  /** The broker's log so far (stderr). */
  log(): string;
  /** Resolves with the first log line matching `pattern`, now or later (bounded). */
  waitForLog(pattern: RegExp, ms?: number): Promise<string>;
  stop(): Promise<void>;
}

/**
 * Debian's mosquitto with one TLS listener on a free loopback port. Started as root, mosquitto
 * drops to the `mosquitto` user before it reads certificates, so the files it needs are copied
 * into a directory of its own that this user can read (test keys only). Resolves once the port
 * accepts TCP; `stop` ends it by PID and removes the directory.
 */
export async function startTlsMosquitto(options: TlsMosquittoOptions): Promise<TlsMosquitto> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'tether-tls-mosquitto-'));
  chmodSync(dir, 0o755);
  const copy = (file: string): string => {
    const to = join(dir, basename(file));
    copyFileSync(file, to);
    chmodSync(to, 0o644);
    return to;
  };
  const conf = join(dir, 'mosquitto.conf');
  writeFileSync(conf, [
    `listener ${port} 127.0.0.1`,
    `cafile ${copy(options.ca)}`,
    `certfile ${copy(options.cert)}`,
    `keyfile ${copy(options.key)}`,
    `require_certificate ${options.requireCertificate}`,
    'allow_anonymous true',
    'persistence false',
    'log_dest stderr',
    'log_type all',
    '',
  ].join('\n'));
  const child = spawn('mosquitto', ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
  const pid = child.pid!;
  let stderr = '';
  const waiters = new Set<() => void>();
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString();
    for (const w of [...waiters]) w();
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      process.kill(pid, 'SIGTERM');
      await withTimeout(exited, 5000, 'mosquitto to exit').catch(() => {
        process.kill(pid, 'SIGKILL');
        return exited;
      });
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await Promise.race([acceptsTcp(port), exited.then(() => Promise.reject(new Error(`mosquitto exited at start: ${stderr}`)))]);
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    port,
    pid,
    log: () => stderr,
    waitForLog(pattern, ms = 10_000) {
      const find = (): string | undefined => stderr.split('\n').find((l) => pattern.test(l));
      let waiter: (() => void) | undefined;
      const found = new Promise<string>((resolve) => {
        waiter = () => {
          const line = find();
          if (line !== undefined) resolve(line);
        };
        waiters.add(waiter);
        waiter();
      });
      return withTimeout(found, ms, `mosquitto log line ${pattern}\n${stderr}`).finally(() => waiters.delete(waiter!));
    },
    stop,
  };
}

/** Polls until the port accepts a TCP connection: 100 tries, 50 ms apart. */
async function acceptsTcp(port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect({ host: '127.0.0.1', port }, () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`mosquitto does not accept on 127.0.0.1:${port} after 5 s`);
}
