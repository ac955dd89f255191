import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

/**
 * Runs the real `tether` command the way a user does: a new Node process on cli/bin/tether.js.
 * Every process started here is remembered so `killAll()` (afterEach/afterAll) can end it by PID.
 */

export const TETHER_BIN = fileURLToPath(new URL('../../bin/tether.js', import.meta.url));
export const FIXTURES = fileURLToPath(new URL('../fixtures/', import.meta.url));
export const EXAMPLES = fileURLToPath(new URL('../../../examples/', import.meta.url));
/** Under Vitest this is the project's Node 24 (node_modules/.bin/node). */
export const NODE = process.execPath;

const live = new Set<ChildProcess>();

/** The parent's environment without TETHER_* (so a developer's settings cannot change results), plus `extra`. */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('TETHER_')) env[k] = v;
  return { ...env, ...extra };
}

export interface RunOptions {
  readonly env?: Record<string, string>;
  readonly cwd?: string;
  readonly timeoutMs?: number;
  /** The Node binary to run the CLI with (default: this one). */
  readonly node?: string;
}

export interface RunResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

function spawnTether(args: readonly string[], options: RunOptions): ChildProcess {
  const child = spawn(options.node ?? NODE, [TETHER_BIN, ...args], {
    cwd: options.cwd ?? process.cwd(),
    env: cleanEnv(options.env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(child);
  child.once('exit', () => live.delete(child));
  return child;
}

function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

/** Runs a command that is expected to finish; kills it by PID and fails if it runs past the timeout. */
export function runTether(args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const timeoutMs = options.timeoutMs ?? 20_000;
  const child = spawnTether(args, options);
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      if (child.pid !== undefined && !exited(child)) process.kill(child.pid, 'SIGKILL');
      reject(new Error(`tether ${args.join(' ')} did not exit within ${timeoutMs} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    // 'close' (not 'exit'): all output has been read by then.
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

export type LogLine = Record<string, unknown> & { msg?: string };

export interface RunningTether {
  readonly pid: number;
  readonly child: ChildProcess;
  /** Every stdout line so far, parsed as JSON (pino). */
  readonly logs: LogLine[];
  /** The 'tether listening' log line. */
  readonly listening: LogLine;
  readonly host: string;
  readonly port: number;
  readonly url: string;
  /** host:port of the admin API, when --admin was given. */
  readonly admin: string | undefined;
  stderr(): string;
  /** Resolves with the first log line (past or future) that matches, or rejects after timeoutMs. */
  waitForLog(predicate: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  /** Sends `signal` by PID and waits (bounded) for the process to end. */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Starts `tether start ARGS` and resolves once it logs 'tether listening' (the readiness signal;
 * it carries the bound listen address, so tests pass --listen 127.0.0.1:0). Rejects with the
 * process output if it exits first or is not ready within the timeout.
 */
export async function startTether(args: readonly string[], options: RunOptions = {}): Promise<RunningTether> {
  const timeoutMs = options.timeoutMs ?? 20_000;
  const child = spawnTether(['start', ...args], options);
  const logs: LogLine[] = [];
  const waiters = new Set<{ predicate: (l: LogLine) => boolean; resolve: (l: LogLine) => void }>();
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const reader = createInterface({ input: child.stdout! });
  const outputDone = new Promise<void>((resolve) => reader.once('close', () => resolve()));
  reader.on('line', (text) => {
    let line: LogLine;
    try {
      line = JSON.parse(text) as LogLine;
    } catch {
      line = { msg: text, unparsed: true };
    }
    logs.push(line);
    for (const w of waiters) {
      if (w.predicate(line)) {
        waiters.delete(w);
        w.resolve(line);
      }
    }
  });
  const ended = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  const describeOutput = (): string => `\nstdout:\n${logs.map((l) => JSON.stringify(l)).join('\n')}\nstderr:\n${stderr}`;

  const waitForLog = (predicate: (line: LogLine) => boolean, waitMs = 20_000): Promise<LogLine> => {
    const seen = logs.find(predicate);
    if (seen) return Promise.resolve(seen);
    return new Promise<LogLine>((resolve, reject) => {
      const waiter = {
        predicate,
        resolve: (l: LogLine) => {
          clearTimeout(timer);
          resolve(l);
        },
      };
      const timer = setTimeout(() => {
        waiters.delete(waiter);
        reject(new Error(`expected log line not seen within ${waitMs} ms${describeOutput()}`));
      }, waitMs);
      waiters.add(waiter);
      // Once the process has exited and all of its stdout has been read, the line will never come.
      void Promise.all([ended, outputDone]).then(() => {
        if (!waiters.has(waiter)) return;
        waiters.delete(waiter);
        clearTimeout(timer);
        reject(new Error(`tether exited before the expected log line${describeOutput()}`));
      });
    });
  };

  let listening: LogLine;
  try {
    listening = await waitForLog((l) => l.msg === 'tether listening', timeoutMs);
  } catch (err) {
    if (child.pid !== undefined && !exited(child)) process.kill(child.pid, 'SIGKILL');
    throw err;
  }
  const listen = String(listening.listen);
  const colon = listen.lastIndexOf(':');
  const host = listen.slice(0, colon).replace(/^\[|\]$/g, '');
  const port = Number(listen.slice(colon + 1));
  const admin = typeof listening.admin === 'string' ? listening.admin.replace(/^https?:\/\//, '') : undefined;

  return {
    pid: child.pid!,
    child,
    logs,
    listening,
    host,
    port,
    url: `mqtt://${listen}`,
    admin,
    stderr: () => stderr,
    waitForLog,
    async stop(signal = 'SIGTERM', stopMs = 15_000) {
      if (!exited(child)) process.kill(child.pid!, signal);
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          if (!exited(child)) process.kill(child.pid!, 'SIGKILL');
          reject(new Error(`tether did not exit within ${stopMs} ms of ${signal}${describeOutput()}`));
        }, stopMs);
      });
      try {
        return await Promise.race([ended, timeout]);
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

/** SIGKILLs (by PID) every process this module started that is still running, and waits for them. */
export async function killAll(): Promise<void> {
  await Promise.all(
    [...live].map(
      (child) =>
        new Promise<void>((resolve) => {
          if (exited(child)) return resolve();
          child.once('exit', () => resolve());
          try {
            process.kill(child.pid!, 'SIGKILL');
          } catch {
            resolve();
          }
        }),
    ),
  );
}

/** Rejects with `what` if `promise` does not settle within `ms`. */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Polls `check` until it returns a value other than undefined: at most `tries` times, `intervalMs` apart. */
export async function poll<T>(check: () => Promise<T | undefined> | T | undefined, what: string, tries = 100, intervalMs = 50): Promise<T> {
  for (let i = 0; i < tries; i++) {
    const value = await check();
    if (value !== undefined) return value;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(`gave up after ${tries} tries: ${what}`);
}

/** Stack-trace lines ("    at fn (file:1:2)") or a thrown error's name, which a user error must never show. */
export const STACK_TRACE = /^\s+at\s|\b(Type|Reference|Syntax|Range)?Error:|node:internal/m;

/** The non-empty lines of a stream's output. */
export function lines(text: string): string[] {
  return text.split('\n').filter((l) => l.trim() !== '');
}

/**
 * A loopback port nothing listens on: one the OS handed out a moment ago and that was closed again.
 * Only for "nothing answers there" tests; servers under test always bind port 0 themselves.
 */
export function deadLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0 }, () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Whether a process with this PID still exists (signal 0 checks without signalling). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
