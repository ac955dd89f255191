import cluster, { type Worker } from 'node:cluster';
import type { Logger } from 'pino';
import { ClusterError } from '../errors.ts';
import { ClusterAdmin } from './cluster-admin.ts';
import { isTetherMessage, type PrimaryMessage, type WorkerMessage } from './messages.ts';
import { PeerRelay, type WorkerLink } from './peer-relay.ts';

/**
 * How the listening socket is shared: `rr`, the primary accepts every connection and hands it to
 * the workers in turn (even spread, costs the primary a little CPU per connection); `os`, every
 * worker accepts on the shared socket and the kernel decides (no hand-off, but the spread can be
 * uneven). Node's cluster.SCHED_RR and SCHED_NONE.
 */
export type ClusterScheduling = 'rr' | 'os';

export interface SupervisorOptions {
  readonly workers: number;
  readonly scheduling: ClusterScheduling;
  readonly log: Logger;
  /** Extra environment for the workers (the embedded brokers' addresses). */
  readonly env?: Readonly<Record<string, string>>;
  /** Crashes within `crashWindowMs` after which the supervisor gives up (default 5 in 60 s). */
  readonly maxCrashes?: number;
  readonly crashWindowMs?: number;
  /** How long the workers have to start listening (default 60 s). */
  readonly startTimeoutMs?: number;
  /** How long the workers have to close after `stop` before they are killed (default 15 s). */
  readonly stopTimeoutMs?: number;
  /** The worker program and its arguments (default: this process's own, so `tether start` runs again). */
  readonly exec?: string;
  readonly args?: readonly string[];
}

/** How long the IPC channel of a worker that has exited may take to close (and deliver its last messages). */
const CHANNEL_DRAIN_MS = 2_000;

/** What a worker said when it was ready: the fields of its `tether listening` line. */
export type Readiness = Readonly<Record<string, unknown>> & { readonly listeners: Readonly<Record<string, string>> };

interface Member {
  readonly worker: Worker;
  readonly link: WorkerLink;
  readiness: Readiness | undefined;
  failure: string | undefined;
  readonly exited: Promise<void>;
}

/**
 * The primary process of `tether start --workers N`: forks the workers (each one runs the whole
 * balancer and listens on the shared listener), relays the plugins' peer messages between them
 * (PeerRelay), serves the admin view over them (ClusterAdmin), restarts a worker that dies
 * (bounded: `maxCrashes` within `crashWindowMs`, then `onFatal`), and stops them all.
 */
export class Supervisor {
  readonly relay = new PeerRelay();
  readonly admin: ClusterAdmin;
  readonly #options: SupervisorOptions;
  readonly #members = new Map<number, Member>();
  readonly #crashes: number[] = [];
  #stopping = false;
  #started = false;
  #onFatal: (message: string) => void = () => {};

  constructor(options: SupervisorOptions) {
    this.#options = options;
    this.admin = new ClusterAdmin(() => this.#ready().map((m) => m.link));
  }

  /** Called once when workers crash faster than the budget allows; the caller stops and exits. */
  onFatal(handler: (message: string) => void): void {
    this.#onFatal = handler;
  }

  /** Live workers' PIDs, oldest first. */
  get pids(): number[] {
    return [...this.#members.values()].map((m) => m.worker.process.pid!).filter((pid) => pid !== undefined);
  }

  /**
   * Forks the workers and resolves with the first one's readiness once every one listens. Rejects
   * with a worker's own error message as soon as one fails to start (the others are then still
   * running: call `stop`).
   */
  start(): Promise<Readiness> {
    const { workers, scheduling } = this.#options;
    // Fixed at the first fork; the environment variable would otherwise decide.
    cluster.schedulingPolicy = scheduling === 'rr' ? cluster.SCHED_RR : cluster.SCHED_NONE;
    cluster.setupPrimary({ exec: this.#options.exec ?? process.argv[1]!, args: [...(this.#options.args ?? process.argv.slice(2))] });
    const forked = Array.from({ length: workers }, () => this.#fork());
    const startTimeoutMs = this.#options.startTimeoutMs ?? 60_000;
    return new Promise<Readiness>((resolve, reject) => {
      let settled = false;
      const timer = setTimeout(() => finish(new ClusterError(`the workers did not all start listening within ${startTimeoutMs} ms`)), startTimeoutMs);
      const finish = (err?: Error): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (err) return reject(err);
        this.#started = true;
        resolve(forked[0]!.readiness!);
      };
      for (const member of forked) {
        member.worker.on('message', (message: unknown) => {
          if (!isTetherMessage(message)) return;
          if (message.t === 'tether:ready' && forked.every((m) => m.readiness)) finish();
        });
        // Any exit before all are listening fails the start (no restarts yet: a worker that cannot
        // start would only fail again).
        void member.exited.then(() => {
          const why = member.failure ?? `worker ${member.worker.id} exited (${describeExit(member.worker)}) ${member.readiness ? 'while the others were starting' : 'before it was listening'}`;
          finish(new ClusterError(why));
        });
      }
    });
  }

  /** Asks every worker to close its server and exit; kills those still there after the grace time. */
  async stop(): Promise<void> {
    this.#stopping = true;
    const members = [...this.#members.values()];
    for (const m of members) send(m.worker, { t: 'tether:stop' });
    const graceMs = this.#options.stopTimeoutMs ?? 15_000;
    let timer: NodeJS.Timeout | undefined;
    const grace = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), graceMs)));
    const all = Promise.all(members.map((m) => m.exited));
    if ((await Promise.race([all, grace])) === 'late') {
      this.#options.log.warn({ graceMs, pids: this.pids }, 'workers still running after the grace time: killing them');
      this.kill();
      await all;
    }
    clearTimeout(timer);
  }

  /** SIGKILL to every worker, by PID (a second signal: the operator wants out now). */
  kill(): void {
    this.#stopping = true;
    for (const m of this.#members.values()) {
      try {
        if (m.worker.process.pid !== undefined) process.kill(m.worker.process.pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
  }

  #ready(): Member[] {
    return [...this.#members.values()].filter((m) => m.readiness !== undefined && m.worker.isConnected());
  }

  #fork(): Member {
    const worker = cluster.fork({ ...this.#options.env });
    // Errors of the IPC channel to a dying worker must never end the primary; its exit is what counts.
    worker.on('error', (err: Error) => this.#options.log.debug({ worker: worker.id, err: err.message }, 'worker channel error'));
    const link: WorkerLink = { id: worker.id, send: (message) => send(worker, message) };
    // Gone for good once it has exited AND its channel is closed: only then has every message it
    // sent (such as why it failed) been read. Node does not always say 'disconnect' for a worker
    // that exited (seen on a loaded machine: a worker stopped by the primary, 'exit' and no
    // 'disconnect', which left stop() waiting forever), so after the exit the channel gets a
    // bounded time to drain.
    const disconnected = new Promise<void>((resolve) => worker.once('disconnect', () => resolve()));
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve())).then(() => {
      let timer: NodeJS.Timeout | undefined;
      return Promise.race([disconnected, new Promise<void>((resolve) => (timer = setTimeout(resolve, CHANNEL_DRAIN_MS)))]).finally(() => clearTimeout(timer));
    });
    const member: Member = { worker, link, readiness: undefined, failure: undefined, exited };
    this.#members.set(worker.id, member);
    worker.on('message', (message: unknown) => {
      if (!isTetherMessage(message)) return;
      const m = message as WorkerMessage;
      // A joining worker first gets the backend states set through the admin API, then the peers' state.
      if (m.t === 'tether:sync') this.admin.replayTo(link);
      if (this.relay.handle(link, m) || this.admin.handle(m)) return;
      if (m.t === 'tether:ready') {
        member.readiness = m as unknown as Readiness;
        this.#options.log.debug({ worker: worker.id, pid: worker.process.pid }, 'worker listening');
      } else if (m.t === 'tether:failed') {
        member.failure = m.message;
      }
    });
    let exit: { code: number | null; signal: string | null } = { code: null, signal: null };
    worker.once('exit', (code, signal) => (exit = { code, signal }));
    void exited.then(() => {
      const { code, signal } = exit;
      this.#members.delete(worker.id);
      this.relay.leave(worker.id);
      this.admin.forget(worker.id);
      if (this.#stopping || !this.#started) return;
      this.#crashed(worker, code, signal, member.failure);
    });
    return member;
  }

  #crashed(worker: Worker, code: number | null, signal: string | null, failure: string | undefined): void {
    const now = Date.now();
    const windowMs = this.#options.crashWindowMs ?? 60_000;
    const max = this.#options.maxCrashes ?? 5;
    this.#crashes.push(now);
    while (this.#crashes.length > 0 && now - this.#crashes[0]! > windowMs) this.#crashes.shift();
    const fields = { worker: worker.id, pid: worker.process.pid, code, signal, ...(failure ? { error: failure } : {}) };
    if (this.#crashes.length >= max) {
      this.#stopping = true;
      const message = `workers crashed ${this.#crashes.length} times within ${Math.round(windowMs / 1000)} s; giving up${failure ? ` (last error: ${failure})` : ''}`;
      this.#options.log.error(fields, message);
      this.#onFatal(message);
      return;
    }
    this.#options.log.warn(fields, 'worker exited unexpectedly: starting another');
    this.#fork();
  }
}

function send(worker: Worker, message: PrimaryMessage): void {
  if (!worker.isConnected()) return;
  try {
    // With a callback, a channel that closes while the message is on its way (EPIPE: the worker is
    // exiting) is reported here rather than as an 'error' event that would end the primary.
    worker.send(message, ignoreSendError);
  } catch {
    // The channel closed between the check and the send: the exit handler cleans up.
  }
}

/** A worker that went away misses the message; its exit is handled where it is observed. */
function ignoreSendError(): void {}

function describeExit(worker: Worker): string {
  const { exitCode, signalCode } = worker.process;
  return signalCode ? `signal ${signalCode}` : `code ${exitCode ?? '?'}`;
}
