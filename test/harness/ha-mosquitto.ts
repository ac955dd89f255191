import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './free-port.ts';

export interface HaMosquittoOptions {
  /**
   * Keep sessions across a restart: `persistence true` with the database in this broker's own
   * temp directory (mosquitto writes it when it is stopped with SIGTERM, and reads it at start).
   */
  readonly persistence?: boolean;
  /** Users (name → password) for `allow_anonymous false`; absent means anonymous access. */
  readonly users?: Readonly<Record<string, string>>;
}

/** `New client connected from A:P as ID (p2, c0, k60[, u'user'])`. */
const CONNECTED = /New client connected from \S+ as (\S+) \(p\d, c(\d)/;

/**
 * Debian's mosquitto on a free loopback port that a failover test can stop (by PID) and start again
 * on the SAME port with the same config, so Tether's configured address stays valid and, with
 * persistence on, the broker comes back with the sessions it had. Its log (stderr) is kept, one
 * array per run, so a test can ask the broker itself which clients it saw.
 */
export class HaMosquitto {
  readonly name: string;
  readonly port: number;
  readonly #dir: string;
  readonly #conf: string;
  #child: ChildProcess | undefined;
  #exited: Promise<void> = Promise.resolve();
  /** Log lines of every run so far (one entry per start), oldest first. */
  readonly runs: string[][] = [];

  private constructor(name: string, port: number, dir: string, conf: string) {
    this.name = name;
    this.port = port;
    this.#dir = dir;
    this.#conf = conf;
  }

  static async start(name: string, options: HaMosquittoOptions = {}): Promise<HaMosquitto> {
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'tether-ha-mosquitto-'));
    // Run as root, mosquitto drops to the `mosquitto` user: it must still be able to write its
    // database here and read the password file.
    chmodSync(dir, 0o777);
    const lines = [`listener ${port} 127.0.0.1`, 'log_dest stderr', 'log_type all', 'connection_messages true'];
    if (options.persistence) lines.push('persistence true', `persistence_location ${dir}/`, 'autosave_interval 0');
    else lines.push('persistence false');
    if (options.users) {
      const passwd = join(dir, 'passwd');
      writeFileSync(passwd, '', { mode: 0o644 });
      for (const [user, password] of Object.entries(options.users)) await run('mosquitto_passwd', ['-b', passwd, user, password]);
      chmodSync(passwd, 0o644);
      lines.push('allow_anonymous false', `password_file ${passwd}`);
    } else {
      lines.push('allow_anonymous true');
    }
    const conf = join(dir, 'mosquitto.conf');
    writeFileSync(conf, `${lines.join('\n')}\n`, { mode: 0o644 });
    const broker = new HaMosquitto(name, port, dir, conf);
    try {
      await broker.#launch();
    } catch (err) {
      rmSync(dir, { recursive: true, force: true });
      throw err;
    }
    return broker;
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  get running(): boolean {
    return this.#child !== undefined;
  }

  /** `name=127.0.0.1:port`, the backend string Tether's config takes. */
  get spec(): string {
    return `${this.name}=127.0.0.1:${this.port}`;
  }

  /** Client ids this broker logged as connecting, over every run, with their clean flag. */
  connections(): { clientId: string; clean: boolean; run: number }[] {
    return this.runs.flatMap((lines, run) => lines.flatMap((line) => {
      const m = CONNECTED.exec(line);
      return m ? [{ clientId: m[1]!, clean: m[2] === '1', run }] : [];
    }));
  }

  /** Stops the broker by PID (SIGTERM: it saves its database first) and waits for the exit. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const child = this.#child;
    if (!child) return;
    this.#child = undefined;
    if (child.exitCode === null && child.signalCode === null) process.kill(child.pid!, signal);
    await this.#exited;
  }

  /** Starts it again with the same config: same port, same persistence directory. */
  async restart(): Promise<void> {
    if (this.#child) throw new Error(`${this.name} is still running`);
    await this.#launch();
  }

  /** Final teardown: stop if running, then remove the temp directory. */
  async close(): Promise<void> {
    await this.stop();
    rmSync(this.#dir, { recursive: true, force: true });
  }

  async #launch(): Promise<void> {
    const child = spawn('mosquitto', ['-c', this.#conf], { stdio: ['ignore', 'ignore', 'pipe'] });
    if (child.pid === undefined) throw new Error('could not start mosquitto');
    const lines: string[] = [];
    this.runs.push(lines);
    let partial = '';
    child.stderr!.on('data', (chunk: Buffer) => {
      const parts = (partial + chunk.toString('utf8')).split('\n');
      partial = parts.pop() ?? '';
      lines.push(...parts);
    });
    this.#exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    this.#child = child;
    let exitedEarly = false;
    void this.#exited.then(() => (exitedEarly = true));
    try {
      // Bounded: the port accepts within 10 s or the start fails, with the broker's own words.
      await waitUntilAccepting(this.port, () => exitedEarly);
    } catch (err) {
      await this.stop('SIGKILL');
      throw err;
    }
    if (exitedEarly) {
      this.#child = undefined;
      throw new Error(`mosquitto ${this.name} exited at start:\n${lines.join('\n')}`);
    }
  }
}

/** Probes the port until a TCP connect succeeds; bounded to 200 tries 50 ms apart (about 10 s). */
async function waitUntilAccepting(port: number, gaveUp: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !gaveUp(); i++) {
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
  if (!gaveUp()) throw new Error(`nothing accepts on 127.0.0.1:${port} after 10 s`);
}

/** Runs a short command to completion (bounded to 10 s), failing on a non-zero exit. */
function run(cmd: string, args: readonly string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => process.kill(child.pid!, 'SIGKILL'), 10_000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${stderr}`));
    });
  });
}
