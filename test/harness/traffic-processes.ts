import { spawn, type ChildProcess } from 'node:child_process';
import { withTimeout } from './traffic-wait.ts';

export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** A spawned command line tool, its output so far, and a way to wait for a line of it. */
export interface Running {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly command: string;
  stdout(): string;
  stderr(): string;
  /** Resolves when the process exits, for whatever reason (its own, the time limit, a kill). */
  readonly exited: Promise<Exit>;
  /** The first stdout line matching `pattern`, now or later, bounded by `ms`. */
  waitForLine(pattern: RegExp, ms?: number): Promise<string>;
}

/**
 * Spawns short-lived command line tools (mosquitto_sub, mosquitto_pub) with a hard time limit
 * each, and kills whatever is still running, by PID, in `killAll` (afterEach).
 */
export class ProcessGroup {
  readonly #running = new Set<Running>();

  spawn(cmd: string, args: readonly string[], limitMs: number): Running {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    if (child.pid === undefined) throw new Error(`could not start ${cmd}`);
    const pid = child.pid;
    let out = '';
    let err = '';
    const lineWaiters = new Set<() => void>();
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString('utf8');
      for (const w of [...lineWaiters]) w();
    });
    child.stderr!.on('data', (d: Buffer) => (err += d.toString('utf8')));
    // The time limit: a tool that hangs is killed, and the test then fails on its exit status.
    const limit = setTimeout(() => killPid(pid, 'SIGKILL'), limitMs);
    const exited = new Promise<Exit>((resolve) => {
      child.once('close', (code, signal) => {
        clearTimeout(limit);
        resolve({ code, signal });
      });
    });
    const command = `${cmd} ${args.join(' ')}`;
    const running: Running = {
      child,
      pid,
      command,
      stdout: () => out,
      stderr: () => err,
      exited,
      waitForLine: (pattern, ms = 15_000) => {
        const find = (): string | undefined => out.split('\n').find((line) => pattern.test(line));
        const now = find();
        if (now !== undefined) return Promise.resolve(now);
        let waiter: (() => void) | undefined;
        const found = new Promise<string>((resolve, reject) => {
          waiter = () => {
            const line = find();
            if (line !== undefined) resolve(line);
          };
          lineWaiters.add(waiter);
          // A tool that exits without printing the line fails the wait at once, with its output.
          void exited.then((exit) => reject(new Error(`${command} exited (${exit.code ?? exit.signal}) without printing ${pattern}\nstdout: ${out}\nstderr: ${err}`)));
        });
        return withTimeout(found, ms, `${pattern} from ${command}`).finally(() => lineWaiters.delete(waiter!));
      },
    };
    this.#running.add(running);
    void exited.then(() => this.#running.delete(running));
    return running;
  }

  /** Runs a tool to completion (bounded by `limitMs`) and returns its exit and output. */
  async run(cmd: string, args: readonly string[], limitMs = 20_000): Promise<Exit & { stdout: string; stderr: string }> {
    const r = this.spawn(cmd, args, limitMs);
    const exit = await r.exited;
    return { ...exit, stdout: r.stdout(), stderr: r.stderr() };
  }

  /** SIGTERM to every process still running, then SIGKILL to any that ignores it for 5 s. */
  async killAll(): Promise<void> {
    const left = [...this.#running];
    for (const r of left) killPid(r.pid, 'SIGTERM');
    await Promise.all(
      left.map((r) =>
        withTimeout(r.exited, 5000, `${r.command} to exit`).catch(() => {
          killPid(r.pid, 'SIGKILL');
          return r.exited;
        }),
      ),
    );
  }
}

function killPid(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // Already gone.
  }
}
