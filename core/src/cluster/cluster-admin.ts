import type { AdminSource, BackendJson, SetStateResult } from '../admin/admin-source.ts';
import type { ExplainResult } from '../explain.ts';
import { clusterExposition } from '../metrics/cluster-metrics.ts';
import type { Exposition } from '../metrics/exposition.ts';
import type { MetricsJson } from '../metrics/tether-metrics.ts';
import type { AdminState, TableQuery, TableView } from '../plugin.ts';
import type { AdminOp, PrimaryMessage, WorkerMessage } from './messages.ts';
import { mergeBackends, mergeStats, mergeTables } from './merge-views.ts';

/** A worker the primary can ask: those that are listening. */
export interface AdminPeer {
  readonly id: number;
  send(message: PrimaryMessage): void;
}

/** How long one worker may take to answer before the request fails. */
const ANSWER_TIMEOUT_MS = 5_000;

interface Waiting {
  readonly resolve: (value: unknown) => void;
  readonly reject: (err: Error) => void;
  readonly timer: NodeJS.Timeout;
  readonly worker: number;
}

/**
 * The admin API of a balancer with several workers, served by the primary: each question goes to
 * every listening worker and the answers are merged (merge-views.ts). A state change is applied on
 * every worker and remembered, so a worker started later (after a crash) gets it too.
 */
export class ClusterAdmin implements AdminSource {
  readonly #workers: () => readonly AdminPeer[];
  readonly #waiting = new Map<number, Waiting>();
  /** Backend states set through the API, replayed to every worker that starts afterwards. */
  readonly states = new Map<string, AdminState>();
  #nextId = 1;

  constructor(workers: () => readonly AdminPeer[]) {
    this.#workers = workers;
  }

  /** Handles a worker's reply; false for any other message. */
  handle(message: WorkerMessage): boolean {
    if (message.t !== 'tether:admin-reply') return false;
    const waiting = this.#waiting.get(message.id);
    if (!waiting) return true;
    this.#waiting.delete(message.id);
    clearTimeout(waiting.timer);
    if (message.ok) waiting.resolve(message.result);
    else waiting.reject(new Error(message.error ?? 'worker error'));
    return true;
  }

  /** A worker is gone: questions waiting for it fail now rather than at the timeout. */
  forget(workerId: number): void {
    for (const [id, waiting] of this.#waiting) {
      if (waiting.worker === workerId) {
        this.#waiting.delete(id);
        clearTimeout(waiting.timer);
        waiting.reject(new Error(`worker ${workerId} exited before answering`));
      }
    }
  }

  /** The states set so far, as messages for a worker that has just started (no answer expected). */
  replayTo(worker: AdminPeer): void {
    for (const [id, state] of this.states) worker.send({ t: 'tether:admin', id: 0, op: 'set-state', args: { id, state } });
  }

  async tables(query: TableQuery = {}): Promise<readonly TableView[]> {
    const answers = await this.#askAll<TableView[]>('tables', { ...query });
    return mergeTables(answers.map((a) => a.value), query.limit);
  }

  async stats(): Promise<Record<string, number>> {
    return mergeStats((await this.#askAll<Record<string, number>>('stats')).map((a) => a.value));
  }

  async backends(): Promise<readonly BackendJson[]> {
    const answers = await this.#askAll<BackendJson[]>('backends');
    return mergeBackends(answers.map((a) => a.value), answers.map((a) => a.worker));
  }

  async setState(id: string, state: AdminState): Promise<SetStateResult> {
    const answers = await this.#askAll<SetStateResult>('set-state', { id, state });
    if (!answers.some((a) => a.value.found)) return { found: false, changed: false };
    this.states.set(id, state);
    const backend = (await this.backends()).find((b) => b.id === id);
    return { found: true, changed: answers.some((a) => a.value.changed), ...(backend ? { backend } : {}) };
  }

  async explain(bytes: Buffer): Promise<ExplainResult> {
    const worker = this.#workers()[0];
    if (!worker) throw new Error('no worker is running');
    return this.#ask<ExplainResult>(worker, 'explain', { hex: bytes.toString('hex') });
  }

  /** Every worker's metrics summed (cluster-metrics.ts), with the primary's process metrics; undefined when metrics are off. */
  async metrics(): Promise<Exposition | undefined> {
    const answers = (await this.#askAll<MetricsJson | null>('metrics')).map((a) => a.value).filter((m): m is MetricsJson => m !== null);
    return answers.length === 0 ? undefined : clusterExposition(answers);
  }

  async #askAll<T>(op: AdminOp, args: Record<string, unknown> = {}): Promise<{ worker: number; value: T }[]> {
    const workers = this.#workers();
    if (workers.length === 0) throw new Error('no worker is running');
    return Promise.all(workers.map(async (w) => ({ worker: w.id, value: await this.#ask<T>(w, op, args) })));
  }

  #ask<T>(worker: AdminPeer, op: AdminOp, args: Record<string, unknown>): Promise<T> {
    const id = this.#nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiting.delete(id);
        reject(new Error(`worker ${worker.id} did not answer ${op} within ${ANSWER_TIMEOUT_MS} ms`));
      }, ANSWER_TIMEOUT_MS);
      this.#waiting.set(id, { resolve: resolve as (v: unknown) => void, reject, timer, worker: worker.id });
      worker.send({ t: 'tether:admin', id, op, args });
    });
  }
}
