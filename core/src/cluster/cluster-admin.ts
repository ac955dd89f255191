import type { AdminSource, BackendChangeResult, BackendJson, TableEditOutcome } from '../admin/admin-source.ts';
import type { ExplainResult } from '../explain.ts';
import { clusterExposition } from '../metrics/cluster-metrics.ts';
import type { Exposition } from '../metrics/exposition.ts';
import type { MetricsJson } from '../metrics/tether-metrics.ts';
import type { AdminState, TableQuery, TableView } from '../plugin.ts';
import type { TableEditResult } from '../pipeline/strategy-chain.ts';
import type { ReloadResult, StatusView, WorkerReload } from '../reload/reload-result.ts';
import type { AdminOp, PrimaryMessage, WorkerMessage } from './messages.ts';
import { mergeBackends, mergeStats, mergeTables } from './merge-views.ts';

/** A worker the primary can ask: those that are listening. */
export interface AdminPeer {
  readonly id: number;
  send(message: PrimaryMessage): void;
}

/** How long one worker may take to answer before the request fails. */
const ANSWER_TIMEOUT_MS = 5_000;
/** A reload builds plugins (each create() may take up to 10 s) and binds listeners. */
const RELOAD_TIMEOUT_MS = 30_000;

/** What the primary itself does on a reload and shows in the status; the workers are asked by ClusterAdmin. */
export interface PrimaryControl {
  reload(trigger: string): Promise<ReloadResult>;
  status(): StatusView;
}

/** A worker's own status, as its primary lists it. */
export type WorkerStatus = NonNullable<StatusView['workers']>[number];

interface Waiting {
  readonly resolve: (value: unknown) => void;
  readonly reject: (err: Error) => void;
  readonly timer: NodeJS.Timeout;
  readonly worker: number;
}

/**
 * The admin API of a balancer with several workers, served by the primary: each question goes to
 * every listening worker and the answers are merged (merge-views.ts). A state change is applied on
 * every worker and remembered, so a worker started later (after a crash) gets it too; so is a
 * weight. A table edit is applied on every worker's copy of the table and not remembered: a worker
 * started later copies the table from the others (peer sync).
 */
export class ClusterAdmin implements AdminSource {
  readonly #workers: () => readonly AdminPeer[];
  readonly #waiting = new Map<number, Waiting>();
  /** Backend states set through the API, replayed to every worker that starts afterwards. */
  readonly states = new Map<string, AdminState>();
  /** Weights set through the API, replayed likewise. */
  readonly weights = new Map<string, number>();
  #nextId = 1;
  #primary: PrimaryControl | undefined;

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

  /** The states and weights set so far, as messages for a worker that has just started (no answer expected). */
  replayTo(worker: AdminPeer): void {
    for (const [id, state] of this.states) worker.send({ t: 'tether:admin', id: 0, op: 'set-state', args: { id, state } });
    for (const [id, weight] of this.weights) worker.send({ t: 'tether:admin', id: 0, op: 'set-weight', args: { id, weight } });
  }

  /**
   * A reload changed the configured state or weight of these backends: the value set at runtime
   * gives way to the configuration's, so a worker started later must not be given the old one.
   */
  configured(changed: { readonly states: readonly string[]; readonly weights: readonly string[] }): void {
    for (const id of changed.states) this.states.delete(id);
    for (const id of changed.weights) this.weights.delete(id);
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

  setState(id: string, state: AdminState): Promise<BackendChangeResult> {
    return this.#changeBackend('set-state', id, { state }, () => this.states.set(id, state));
  }

  setWeight(id: string, weight: number): Promise<BackendChangeResult> {
    return this.#changeBackend('set-weight', id, { weight }, () => this.weights.set(id, weight));
  }

  /** Every worker's copy of the table; the counts are the largest of any copy (they hold the same entries). */
  async setEntry(key: string, backendId: string): Promise<TableEditOutcome> {
    return mergeEdits(await this.#askAll<TableEditOutcome>('set-entry', { key, backend: backendId }));
  }

  async deleteEntry(key: string): Promise<TableEditResult> {
    const { tables, changed } = mergeEdits(await this.#askAll<TableEditResult>('delete-entry', { key }));
    return { tables, changed };
  }

  async clearEntries(backendId?: string): Promise<TableEditOutcome> {
    return mergeEdits(await this.#askAll<TableEditOutcome>('clear-entries', backendId === undefined ? {} : { backend: backendId }));
  }

  /** Applies a backend change on every worker; remembers it (for workers started later) when the backend exists. */
  async #changeBackend(op: AdminOp, id: string, args: Record<string, unknown>, remember: () => void): Promise<BackendChangeResult> {
    const answers = await this.#askAll<BackendChangeResult>(op, { id, ...args });
    if (!answers.some((a) => a.value.found)) return { found: false, changed: false };
    remember();
    const backend = (await this.backends()).find((b) => b.id === id);
    return { found: true, changed: answers.some((a) => a.value.changed), ...(backend ? { backend } : {}) };
  }

  /** Set by the primary: it validates a reload before the workers are asked, and owns the status. */
  control(primary: PrimaryControl): void {
    this.#primary = primary;
  }

  async reload(trigger = 'admin'): Promise<ReloadResult> {
    if (!this.#primary) throw new Error('reload is not available on this balancer');
    return this.#primary.reload(trigger);
  }

  async status(): Promise<StatusView> {
    if (!this.#primary) throw new Error('status is not available on this balancer');
    return { ...this.#primary.status(), workers: await this.workerStatus() };
  }

  /** Every listening worker reloads; each answers for itself (one that fails keeps its generation). */
  async reloadWorkers(trigger: string): Promise<(WorkerReload & { readonly changes: readonly string[] })[]> {
    const workers = this.#workers();
    return Promise.all(workers.map(async (w) => {
      try {
        const r = await this.#ask<ReloadResult>(w, 'reload', { trigger }, RELOAD_TIMEOUT_MS);
        return { worker: w.id, ok: r.ok, generation: r.generation, errors: r.errors, changes: r.changes };
      } catch (err) {
        return { worker: w.id, ok: false, generation: 0, errors: [(err as Error).message], changes: [] };
      }
    }));
  }

  async workerStatus(): Promise<WorkerStatus[]> {
    const answers = await this.#askAll<StatusView>('status');
    return answers.map(({ worker, value }) => ({ worker, pid: value.pid, generation: value.generation, loadedAt: value.loadedAt }));
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

  #ask<T>(worker: AdminPeer, op: AdminOp, args: Record<string, unknown>, timeoutMs = ANSWER_TIMEOUT_MS): Promise<T> {
    const id = this.#nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiting.delete(id);
        reject(new Error(`worker ${worker.id} did not answer ${op} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#waiting.set(id, { resolve: resolve as (v: unknown) => void, reject, timer, worker: worker.id });
      worker.send({ t: 'tether:admin', id, op, args });
    });
  }
}

function mergeEdits(answers: readonly { value: Partial<TableEditOutcome> & TableEditResult }[]): TableEditOutcome {
  return {
    found: answers.some((a) => a.value.found !== false),
    tables: Math.max(0, ...answers.map((a) => a.value.tables)),
    changed: Math.max(0, ...answers.map((a) => a.value.changed)),
  };
}
