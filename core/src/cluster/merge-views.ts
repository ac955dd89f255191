import type { TableEntry, TableView } from '../plugin.ts';
import type { BackendJson } from '../admin/admin-source.ts';

/**
 * How the admin API's answers of several workers become the balancer's one answer. Pure
 * functions over the workers' JSON, in worker order.
 */

/**
 * Tables: the i-th table of every worker is the same chain entry. Entries are merged by key: `use`
 * and `hits` are summed (a worker counts only its own connections and matches), `lastSeen` is the
 * latest, `backend` the one of the latest-seen copy (they agree once the broadcasts have been
 * applied), `expiresInMs` the longest (an entry in use on any worker does not expire).
 */
export function mergeTables(perWorker: readonly (readonly TableView[])[], limit = Infinity): TableView[] {
  const count = Math.max(0, ...perWorker.map((t) => t.length));
  const merged: TableView[] = [];
  for (let i = 0; i < count; i++) {
    const views = perWorker.map((tables) => tables[i]).filter((v): v is TableView => v !== undefined);
    const byKey = new Map<string, TableEntry>();
    for (const view of views) {
      for (const e of view.entries) {
        const seen = byKey.get(e.key);
        if (!seen) {
          byKey.set(e.key, { ...e });
          continue;
        }
        const newer = e.lastSeen > seen.lastSeen;
        byKey.set(e.key, {
          key: e.key,
          backend: newer ? e.backend : seen.backend,
          use: seen.use + e.use,
          hits: seen.hits + e.hits,
          lastSeen: Math.max(seen.lastSeen, e.lastSeen),
          expiresInMs: Math.max(seen.expiresInMs, e.expiresInMs),
          ...(seen.flags || e.flags ? { flags: [...new Set([...(seen.flags ?? []), ...(e.flags ?? [])])] } : {}),
        });
      }
    }
    const first = views[0]!;
    const entries = [...byKey.values()];
    merged.push({
      name: first.name,
      type: first.type,
      size: first.size,
      // Each worker holds a replica; with a limit the listed keys are only part of it.
      used: Math.max(byKey.size, ...views.map((v) => v.used)),
      entries: Number.isFinite(limit) ? entries.slice(0, Math.max(0, limit)) : entries,
      ...(first.store !== undefined ? { store: first.store } : {}),
      // A shared store's pages are the same on every worker: the first worker's cursor goes on.
      ...(first.cursor !== undefined ? { cursor: first.cursor } : {}),
    });
  }
  return merged;
}

/** Counters: summed (gauges such as connections_active are per worker, so their sum is the total). */
export function mergeStats(perWorker: readonly Readonly<Record<string, number>>[]): Record<string, number> {
  const sum = new Map<string, number>();
  for (const counters of perWorker) for (const [name, value] of Object.entries(counters)) sum.set(name, (sum.get(name) ?? 0) + value);
  return Object.fromEntries([...sum].sort(([a], [b]) => a.localeCompare(b)));
}

/**
 * Backends: one entry per backend any worker has (a backend only some workers have lists them under
 * `workers`), in configuration order. `activeConnections` and `persistentConnections` are summed; `healthy`
 * holds when every worker's checks pass; when the workers disagree on `state` (one worker's checks
 * see it down, another's not yet) the first worker's is shown and each worker's is listed under
 * `workerStates`; likewise `workerWeights` when their weights differ (a weight that failed to
 * reach one of them).
 */
export function mergeBackends(perWorker: readonly (readonly BackendJson[])[], workerIds: readonly number[] = []): BackendJson[] {
  // The union: with a provider, each worker resolves on its own and may see a backend a moment before another.
  const union = new Map<unknown, BackendJson>();
  for (const list of perWorker) for (const b of list) if (!union.has(b.id)) union.set(b.id, b);
  return [...union.values()].map((backend) => {
    const found = perWorker.map((list, i) => ({ worker: String(workerIds[i] ?? i + 1), copy: list.find((b) => b.id === backend.id) }));
    const present = found.filter((f): f is { worker: string; copy: BackendJson } => f.copy !== undefined);
    const copies = present.map((f) => f.copy);
    const states = copies.map((b) => b.state);
    const merged: Record<string, unknown> = {
      ...backend,
      activeConnections: copies.reduce((n, b) => n + (typeof b.activeConnections === 'number' ? b.activeConnections : 0), 0),
      healthy: copies.every((b) => b.healthy !== false),
    };
    const persistent = copies.reduce((n, b) => n + (typeof b.persistentConnections === 'number' ? b.persistentConnections : 0), 0);
    if (persistent > 0) merged.persistentConnections = persistent;
    else delete merged.persistentConnections;
    const byWorker = (field: string): Record<string, unknown> => Object.fromEntries(present.map((f) => [f.worker, f.copy[field]]));
    if (new Set(states).size > 1) merged.workerStates = byWorker('state');
    if (new Set(copies.map((b) => b.weight)).size > 1) merged.workerWeights = byWorker('weight');
    if (present.length < perWorker.length) merged.workers = present.map((f) => Number(f.worker));
    return merged as BackendJson;
  });
}
