import type { PluginContext, Strategy } from '@tether/core';
import { localSelect } from './local-select.ts';
import { syncAcrossWorkers } from './peer-sync.ts';
import { StickTable } from './stick-table.ts';

export interface MemoryStickTableOptions {
  readonly size: number;
  readonly expireMs: number;
  readonly keyLength: number;
  readonly mode: 'learn' | 'match-only';
  /** `conn.attributes` key marking a connection this table counted in an entry's `use`. */
  readonly storedAttribute: string;
}

/**
 * The stick table in this process (`store: memory`): match in `select`, store in `onSpliced`
 * once the backend accepted, release in `onClosed`. With several workers, the copies are kept in
 * step over the peer channel (peer-sync.ts).
 */
export function createMemoryStickTable(ctx: PluginContext, options: MemoryStickTableOptions): Strategy {
  const STORED = options.storedAttribute;
  const { expireMs } = options;
  const table = new StickTable({ size: options.size, expireMs, keyLength: options.keyLength, now: ctx.now });
  const timer = setInterval(() => table.sweep(), Math.min(Math.max(expireMs / 10, 1000), 60_000));
  timer.unref();
  ctx.signal.addEventListener('abort', () => clearInterval(timer), { once: true });
  // With several workers: learns, disconnects and live keys are shared (peer-sync.ts).
  const sync = ctx.peers
    ? syncAcrossWorkers({ peers: ctx.peers, table, mode: options.mode, expireMs, now: ctx.now, signal: ctx.signal, log: ctx.log })
    : undefined;
  return {
    select: (conn, backends) => localSelect(table, ctx.stats, conn, backends),
    onSpliced(conn, backend) {
      if (!conn.key) return;
      const key = table.normalize(conn.key);
      const entry = table.get(key);
      const previous = entry?.backend;
      if (options.mode === 'match-only' && entry?.backend !== backend.id) return;
      if (entry && entry.backend !== backend.id) {
        ctx.stats.inc('rewrites');
        ctx.log.debug({ from: entry.backend, to: backend.id }, 'stick entry moved to another backend');
      }
      if (table.store(key, backend)) {
        conn.attributes.set(STORED, true);
        sync?.learned(key, backend.id, previous !== backend.id);
      } else ctx.stats.inc('full');
    },
    onClosed(conn, backend) {
      if (!conn.key || !conn.attributes.get(STORED)) return;
      const key = table.normalize(conn.key);
      table.release(key);
      sync?.closed(key, backend.id);
    },
    table: (limit, query) => table.view('stick-table', { ...query, ...(limit !== undefined ? { limit } : {}) }),
    // Operator edits. With several workers the primary applies them on every worker's copy.
    setEntry(key, backend) {
      if (!table.set(table.normalize(key), backend.id)) throw new Error(`the table is full (size ${options.size}) and every entry is in use`);
    },
    deleteEntry: (key) => table.delete(table.normalize(key)),
    clearEntries: (backendId) => table.clear(backendId),
  };
}
