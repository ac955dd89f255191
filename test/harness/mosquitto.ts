import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './free-port.ts';

export interface Mosquitto {
  readonly port: number;
  readonly pid: number;
  readonly process: ChildProcess;
  stop(): Promise<void>;
}

export interface MosquittoOptions {
  /** Listen on this port (to start a broker again where one was stopped); default a free one. */
  readonly port?: number;
  /** Loopback address to listen on (127.0.0.2 and so on give brokers that share a port); default 127.0.0.1. */
  readonly host?: string;
  /** Users allowed in, with their passwords: anonymous access is then off. */
  readonly users?: Readonly<Record<string, string>>;
}

/**
 * Starts Debian's mosquitto on a free loopback port, anonymous access (unless `users`), persistence
 * off (a restart loses every session); resolves once it accepts.
 */
export async function startMosquitto(options: MosquittoOptions = {}): Promise<Mosquitto> {
  const port = options.port ?? (await freePort());
  const dir = mkdtempSync(join(tmpdir(), 'tether-mosquitto-'));
  const conf = join(dir, 'mosquitto.conf');
  let access = 'allow_anonymous true\n';
  if (options.users) {
    const passwords = join(dir, 'passwords');
    writeFileSync(passwords, '');
    for (const [user, password] of Object.entries(options.users)) execFileSync('mosquitto_passwd', ['-b', passwords, user, password]);
    // Started as root, mosquitto reads the password file after switching to its own user.
    chmodSync(dir, 0o755);
    chmodSync(passwords, 0o644);
    access = `allow_anonymous false\npassword_file ${passwords}\n`;
  }
  const host = options.host ?? '127.0.0.1';
  writeFileSync(conf, `listener ${port} ${host}\n${access}persistence false\nlog_dest stderr\n`);
  const child = spawn('mosquitto', ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<never>((_, reject) => child.once('exit', (code) => reject(new Error(`mosquitto exited (${code}): ${stderr}`))));
  await Promise.race([waitForPort(port, host), exited]);
  exited.catch(() => undefined);
  return {
    port,
    pid: child.pid!,
    process: child,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve(rmDir(dir));
        child.once('exit', () => resolve(rmDir(dir)));
        process.kill(child.pid!, 'SIGTERM');
      }),
  };
}

function rmDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/** Polls until something accepts on the port: bounded to 100 tries, 50 ms apart. */
async function waitForPort(port: number, host: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect({ host, port }, () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nothing listens on ${host}:${port} after 5 s`);
}
