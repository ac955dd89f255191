import type { BackendPool } from '../backend/backend-pool.ts';
import type { ExplainResult } from '../explain.ts';
import type { Exposition } from '../metrics/exposition.ts';
import type { TetherMetrics } from '../metrics/tether-metrics.ts';
import type { AdminState, TableQuery, TableView } from '../plugin.ts';
import type { StrategyChain, TableEditResult } from '../pipeline/strategy-chain.ts';
import type { ReloadResult, StatusView } from '../reload/reload-result.ts';
import type { Stats } from '../stats.ts';

/** A backend as the admin API shows it (the JSON of the pool's live backend). */
export type BackendJson = { readonly id: string } & Readonly<Record<string, unknown>>;

/** The answer to a change of one backend (its state or its weight). */
export interface BackendChangeResult {
  /** False when no backend has that name. */
  readonly found: boolean;
  readonly changed: boolean;
  readonly backend?: BackendJson;
}

/** The answer to a table edit that names a backend (set, clear by backend). */
export interface TableEditOutcome extends TableEditResult {
  /** False when no backend has the name given: nothing was changed. */
  readonly found: boolean;
}

/**
 * What the admin API shows and changes, whoever holds it: one process's own pool, stats and
 * strategies (`localAdminSource`), or, with `workers` above 1, every worker asked over IPC and
 * the answers merged (`ClusterAdmin`).
 */
export interface AdminSource {
  tables(query?: TableQuery): Promise<readonly TableView[]>;
  stats(): Promise<Record<string, number>>;
  backends(): Promise<readonly BackendJson[]>;
  setState(id: string, state: AdminState): Promise<BackendChangeResult>;
  /** HAProxy `set server weight`: a whole number from 1 to 256, validated by the caller. */
  setWeight(id: string, weight: number): Promise<BackendChangeResult>;
  /** HAProxy `set table`: `key` goes to backend `backendId` from its next connection on. */
  setEntry(key: string, backendId: string): Promise<TableEditOutcome>;
  /** Forgets `key` in every table. */
  deleteEntry(key: string): Promise<TableEditResult>;
  /** HAProxy `clear table`: every entry, or those on `backendId`. */
  clearEntries(backendId?: string): Promise<TableEditOutcome>;
  explain(bytes: Buffer): Promise<ExplainResult>;
  /** Reads the configuration again and applies it (`tether reload`); `trigger` names who asked, for the log. */
  reload(trigger?: string): Promise<ReloadResult>;
  /** The running generation (`tether status`). */
  status(): Promise<StatusView>;
  /** The Prometheus exposition (GET /metrics); undefined when metrics are turned off. */
  metrics(): Promise<Exposition | undefined>;
}

export interface LocalAdminDeps {
  readonly stats: Stats;
  readonly pool: BackendPool;
  readonly strategies: StrategyChain;
  readonly explain: (bytes: Buffer) => Promise<ExplainResult>;
  readonly reload: (trigger?: string) => Promise<ReloadResult>;
  readonly status: () => Promise<StatusView>;
  readonly metrics?: TetherMetrics | undefined;
}

const asJson = <T>(value: unknown): T => JSON.parse(JSON.stringify(value)) as T;

const NOT_FOUND = { found: false, changed: 0, tables: 0 } as const;

/** The admin view of one process. */
export function localAdminSource(deps: LocalAdminDeps): AdminSource {
  const { stats, pool } = deps;
  const backendJson = (id: string): BackendJson => asJson<BackendJson>(pool.get(id));
  return {
    // `deps.strategies` is read on every call: a reload replaces the chain.
    tables: (query) => deps.strategies.tables(query),
    stats: async () => stats.snapshot(),
    backends: async () => asJson<BackendJson[]>(pool.all()),
    async setState(id, state) {
      if (!pool.get(id)) return { found: false, changed: false };
      const changed = pool.setAdminState(id, state);
      return { found: true, changed, backend: backendJson(id) };
    },
    async setWeight(id, weight) {
      const before = pool.get(id)?.weight;
      if (before === undefined || !pool.setWeight(id, weight)) return { found: false, changed: false };
      return { found: true, changed: before !== weight, backend: backendJson(id) };
    },
    async setEntry(key, backendId) {
      const backend = pool.get(backendId);
      if (!backend) return NOT_FOUND;
      return { found: true, ...(await deps.strategies.setEntry(key, backend)) };
    },
    deleteEntry: (key) => deps.strategies.deleteEntry(key),
    async clearEntries(backendId) {
      if (backendId !== undefined && !pool.get(backendId)) return NOT_FOUND;
      return { found: true, ...(await deps.strategies.clearEntries(backendId)) };
    },
    explain: (bytes) => deps.explain(bytes),
    reload: (trigger) => deps.reload(trigger),
    status: () => deps.status(),
    metrics: async () => deps.metrics?.exposition(),
  };
}
