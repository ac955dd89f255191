import { spawn, type ChildProcess } from 'node:child_process';

/**
 * How to run a TypeScript entry point with this Node: Node 22.18+ strips types by itself, 22.12 to
 * 22.17 needs the flag. The children then are the processes that do the work (no wrapper between
 * us and the PID whose CPU time we read).
 */
export function typeScriptNode(): string[] {
  return process.features.typescript ? [process.execPath] : [process.execPath, '--experimental-strip-types', '--disable-warning=ExperimentalWarning'];
}

/** How a child ended. */
export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface SpawnSpec {
  /** What the process is in the run ("tether", "haproxy", "responder", "loadgen"), for reports. */
  readonly role: string;
  readonly command: string;
  readonly args: readonly string[];
  /** Open an IPC channel (the load generator). */
  readonly ipc?: boolean;
  /** Variables added to this process's environment for the child. */
  readonly env?: Readonly<Record<string, string>>;
}

/** Lines of output kept per child, for error messages. */
const TAIL_LINES = 40;

/**
 * One process the benchmark started: its output is drained continuously (a child blocked on a
 * full pipe would distort the measurement), its last lines are kept for error messages, and it is
 * stopped by its PID. stdin is a pipe the child can watch: our own children exit when it closes,
 * that is, when this process goes away (see exit-with-parent.ts).
 */
export class ManagedChild {
  readonly role: string;
  readonly pid: number;
  readonly child: ChildProcess;
  readonly exited: Promise<Exit>;
  readonly #tail: string[] = [];
  readonly #lineWaiters = new Set<(line: string) => void>();
  #exit: Exit | undefined;

  constructor(spec: SpawnSpec) {
    this.role = spec.role;
    const stdio: ('pipe' | 'ipc')[] = spec.ipc ? ['pipe', 'pipe', 'pipe', 'ipc'] : ['pipe', 'pipe', 'pipe'];
    this.child = spawn(spec.command, spec.args, { stdio, ...(spec.env ? { env: { ...process.env, ...spec.env } } : {}) });
    if (this.child.pid === undefined) throw new Error(`could not start ${spec.role} (${spec.command})`);
    this.pid = this.child.pid;
    // A spawn error (ENOENT) arrives as an event; it also ends in 'close', which settles `exited`.
    this.child.on('error', (err) => this.#keep(`spawn error: ${err.message}`));
    this.child.stdin!.on('error', () => {});
    this.exited = new Promise((resolve) =>
      this.child.once('close', (code, signal) => {
        this.#exit = { code, signal };
        resolve(this.#exit);
      }),
    );
    this.#readLines(this.child.stdout!, true);
    this.#readLines(this.child.stderr!, false);
  }

  get running(): boolean {
    return this.#exit === undefined;
  }

  /** The last lines the child printed (stdout and stderr), for error messages. */
  tail(): string {
    return this.#tail.join('\n');
  }

  /** The first stdout line (from now on) that `accept` returns a value for; bounded in time. */
  waitForLine<T>(accept: (line: string) => T | undefined, timeoutMs: number, what: string): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const finish = (err: Error | undefined, value?: T): void => {
        clearTimeout(timer);
        this.#lineWaiters.delete(onLine);
        if (err) reject(err);
        else resolve(value as T);
      };
      const onLine = (line: string): void => {
        const value = accept(line);
        if (value !== undefined) finish(undefined, value);
      };
      const timer = setTimeout(() => finish(new Error(`timed out after ${timeoutMs} ms waiting for ${what} from ${this.role} (pid ${this.pid}); its output:\n${this.tail()}`)), timeoutMs);
      this.#lineWaiters.add(onLine);
      void this.exited.then((exit) => finish(new Error(`${this.role} exited (${exit.code ?? exit.signal}) before ${what}; its output:\n${this.tail()}`)));
    });
  }

  /** SIGTERM by PID, SIGKILL if still there after `graceMs`; resolves once it has exited. */
  async stop(graceMs = 5_000): Promise<void> {
    if (!this.running) return;
    signal(this.pid, 'SIGTERM');
    this.child.stdin!.end();
    const timer = setTimeout(() => signal(this.pid, 'SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }

  #readLines(stream: NodeJS.ReadableStream, isStdout: boolean): void {
    let partial = '';
    stream.on('data', (chunk: Buffer) => {
      const parts = (partial + chunk.toString('utf8')).split('\n');
      partial = parts.pop() ?? '';
      for (const line of parts) {
        if (line.length === 0) continue;
        this.#keep(line);
        if (isStdout) for (const waiter of [...this.#lineWaiters]) waiter(line);
      }
    });
  }

  #keep(line: string): void {
    this.#tail.push(line.length > 500 ? `${line.slice(0, 500)}...` : line);
    if (this.#tail.length > TAIL_LINES) this.#tail.shift();
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // Already gone.
  }
}

/**
 * Every process of one run: started through here, stopped through here (by PID, last started
 * first), and listed in the result so a caller can check that none is left.
 */
export class ChildRegistry {
  readonly #live = new Set<ManagedChild>();
  readonly started: { role: string; pid: number }[] = [];
  readonly #onExit = (): void => {
    // Last resort when this process exits without stopping its children (an uncaught error).
    for (const child of this.#live) signal(child.pid, 'SIGKILL');
  };

  constructor() {
    process.once('exit', this.#onExit);
  }

  spawn(spec: SpawnSpec): ManagedChild {
    const child = new ManagedChild(spec);
    this.#live.add(child);
    this.started.push({ role: spec.role, pid: child.pid });
    void child.exited.then(() => this.#live.delete(child));
    return child;
  }

  async stopAll(): Promise<void> {
    for (const child of [...this.#live].reverse()) await child.stop();
    process.removeListener('exit', this.#onExit);
  }
}
