import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from './poll.ts';

/**
 * Debian's HAProxy as a child process of the test: `haproxy -f <cfg> -db` (foreground, no
 * daemon, no master), its config in a temp directory, stopped by PID. Its log goes to stdout
 * (`log stdout format raw`), so a test reads what HAProxy itself saw, one line per session.
 */
export class HaproxyProcess {
  readonly #child: ChildProcess;
  readonly #dir: string;
  readonly #exited: Promise<void>;
  /** stdout and stderr lines so far: the log lines a config sends to stdout, and HAProxy's own alerts. */
  readonly lines: string[] = [];

  private constructor(child: ChildProcess, dir: string) {
    this.#child = child;
    this.#dir = dir;
    this.#exited = new Promise((resolve) => child.once('exit', () => resolve()));
    for (const stream of [child.stdout!, child.stderr!]) {
      let partial = '';
      stream.on('data', (chunk: Buffer) => {
        const parts = (partial + chunk.toString('utf8')).split('\n');
        partial = parts.pop() ?? '';
        this.lines.push(...parts.filter((l) => l.length > 0));
      });
    }
  }

  /**
   * Writes `config` to a temp dir, starts HAProxy on it and waits (bounded) until every one of
   * `ports` is listening. Readiness is read from /proc/net/tcp{,6} rather than probed with a
   * connection, because a probe would itself be a session: logged, forwarded with a PROXY header,
   * counted by the Tether behind.
   */
  static async start(config: string, ports: readonly number[]): Promise<HaproxyProcess> {
    const dir = mkdtempSync(join(tmpdir(), 'tether-haproxy-'));
    const file = join(dir, 'haproxy.cfg');
    writeFileSync(file, config);
    const child = spawn('haproxy', ['-f', file, '-db'], { stdio: ['ignore', 'pipe', 'pipe'] });
    if (child.pid === undefined) {
      rmSync(dir, { recursive: true, force: true });
      throw new Error('could not start haproxy');
    }
    const proc = new HaproxyProcess(child, dir);
    let exited = false;
    void proc.#exited.then(() => (exited = true));
    try {
      await waitFor(() => exited || ports.every(isListening), { what: () => `haproxy to listen on ${ports.join(', ')}; its output:\n${proc.lines.join('\n')}` });
      if (exited) throw new Error(`haproxy exited at start (code ${child.exitCode}):\n${proc.lines.join('\n')}\nconfig:\n${config}`);
    } catch (err) {
      await proc.close();
      throw err;
    }
    return proc;
  }

  get pid(): number {
    return this.#child.pid!;
  }

  /** Waits (bounded) for `count` lines matching `pattern` and returns them all. */
  async waitForLines(pattern: RegExp, count = 1): Promise<string[]> {
    return waitFor(() => {
      const found = this.lines.filter((l) => pattern.test(l));
      return found.length >= count && found;
    }, { what: () => `${count} haproxy line(s) matching ${pattern}; output so far:\n${this.lines.join('\n')}` });
  }

  /** SIGTERM by PID (HAProxy's hard stop), SIGKILL if it is still there after 5 s; removes the config. */
  async close(): Promise<void> {
    const child = this.#child;
    if (child.exitCode === null && child.signalCode === null) {
      process.kill(child.pid!, 'SIGTERM');
      const timer = setTimeout(() => {
        if (child.exitCode === null && child.signalCode === null) process.kill(child.pid!, 'SIGKILL');
      }, 5_000);
      await this.#exited;
      clearTimeout(timer);
    }
    rmSync(this.#dir, { recursive: true, force: true });
  }
}

/** Whether something listens on TCP `port` (any address, either family), per the kernel's tables. */
function isListening(port: number): boolean {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    // Columns: sl local_address rem_address st ...; state 0A is LISTEN.
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols[1]?.endsWith(`:${hexPort}`) && cols[3] === '0A') return true;
    }
  }
  return false;
}

/**
 * The global and defaults sections every test config starts with: one thread (a 2-core machine
 * also runs the broker, Tether and the test), mode tcp, timeouts HAProxy would otherwise warn
 * about, and logs to stdout in raw form so a line is exactly the test's log-format.
 */
export function haproxyPreamble(logFormat: string): string {
  return [
    'global',
    '  nbthread 1',
    '  log stdout format raw local0 info',
    'defaults',
    '  mode tcp',
    '  log global',
    '  timeout connect 5s',
    '  timeout client 30s',
    '  timeout server 30s',
    `  log-format "${logFormat}"`,
    '',
  ].join('\n');
}
