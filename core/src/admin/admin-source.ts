import type { BackendPool } from '../backend/backend-pool.ts';
import type { ExplainResult } from '../explain.ts';
import type { Exposition } from '../metrics/exposition.ts';
import type { TetherMetrics } from '../metrics/tether-metrics.ts';
import type { AdminState, TableQuery, TableView } from '../plugin.ts';
import type { StrategyChain } from '../pipeline/strategy-chain.ts';
import type { Stats } from '../stats.ts';

/** A backend as the admin API shows it (the JSON of the pool's live backend). */
export type BackendJson = { readonly id: string } & Readonly<Record<string, unknown>>;

export interface SetStateResult {
  /** False when no backend has that name. */
  readonly found: boolean;
  readonly changed: boolean;
  readonly backend?: BackendJson;
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
  setState(id: string, state: AdminState): Promise<SetStateResult>;
  explain(bytes: Buffer): Promise<ExplainResult>;
  /** The Prometheus exposition (GET /metrics); undefined when metrics are turned off. */
  metrics(): Promise<Exposition | undefined>;
}

export interface LocalAdminDeps {
  readonly stats: Stats;
  readonly pool: BackendPool;
  readonly strategies: StrategyChain;
  readonly explain: (bytes: Buffer) => Promise<ExplainResult>;
  readonly metrics?: TetherMetrics | undefined;
}

const asJson = <T>(value: unknown): T => JSON.parse(JSON.stringify(value)) as T;

/** The admin view of one process. */
export function localAdminSource(deps: LocalAdminDeps): AdminSource {
  const { stats, pool, strategies } = deps;
  return {
    tables: (query) => strategies.tables(query),
    stats: async () => stats.snapshot(),
    backends: async () => asJson<BackendJson[]>(pool.all()),
    async setState(id, state) {
      if (!pool.get(id)) return { found: false, changed: false };
      const changed = pool.setAdminState(id, state);
      return { found: true, changed, backend: asJson<BackendJson>(pool.get(id)) };
    },
    explain: (bytes) => deps.explain(bytes),
    metrics: async () => deps.metrics?.exposition(),
  };
}
