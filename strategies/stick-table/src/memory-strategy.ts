import type { PluginContext, Strategy } from '@tether/core';
import { localSelect } from './local-select.ts';
import { syncAcrossWorkers, type PeerSync } from './peer-sync.ts';
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
 * What a memory stick table hands to the product that replaces it on a reload (its options
 * changed): the entries, and the peer sync in use. Both products share it, so a connection spliced
 * before the reload and closed after it releases its entry in the one table, through the current sync.
 */
interface Shared {
  readonly table: StickTable;
  sync: PeerSync | undefined;
}

const SHARED = Symbol('stick-table.shared');

function sharedOf(previous: unknown): Shared | undefined {
  return previous && typeof previous === 'object' ? (previous as { [SHARED]?: Shared })[SHARED] : undefined;
}

/**
 * The stick table in this process (`store: memory`): match in `select`, store in `onSpliced`
 * once the backend accepted, release in `onClosed`. With several workers, the copies are kept in
 * step over the peer channel (peer-sync.ts).
 */
export function createMemoryStickTable(ctx: PluginContext, options: MemoryStickTableOptions): Strategy {
  const STORED = options.storedAttribute;
  const COUNTED = `${STORED}:counted`;
  const { expireMs } = options;
  const settings = { size: options.size, expireMs, keyLength: options.keyLength, now: ctx.now };
  // A reload that changed this table's options: take the entries over instead of starting empty.
  const adopted = sharedOf(ctx.previous);
  adopted?.table.reconfigure(settings);
  const shared: Shared = adopted ?? { table: new StickTable(settings), sync: undefined };
  const { table } = shared;
  const timer = setInterval(() => table.sweep(), Math.min(Math.max(expireMs / 10, 1000), 60_000));
  timer.unref();
  ctx.signal.addEventListener('abort', () => clearInterval(timer), { once: true });
  // With several workers: learns, disconnects and live keys are shared (peer-sync.ts).
  shared.sync = ctx.peers
    ? syncAcrossWorkers({ peers: ctx.peers, table, mode: options.mode, expireMs, now: ctx.now, signal: ctx.signal, log: ctx.log })
    : undefined;
  const product: Strategy & { [SHARED]: Shared } = {
    [SHARED]: shared,
    select: (conn, backends) => localSelect(table, ctx.stats, conn, backends, COUNTED),
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
        shared.sync?.learned(key, backend.id, previous !== backend.id);
      } else ctx.stats.inc('full');
    },
    onClosed(conn, backend) {
      if (!conn.key || !conn.attributes.get(STORED)) return;
      const key = table.normalize(conn.key);
      table.release(key);
      shared.sync?.closed(key, backend.id);
    },
    table: (limit, query) => table.view('stick-table', { ...query, ...(limit !== undefined ? { limit } : {}) }),
    // Operator edits. With several workers the primary applies them on every worker's copy.
    setEntry(key, backend) {
      if (!table.set(table.normalize(key), backend.id)) throw new Error(`the table is full (size ${options.size}) and every entry is in use`);
    },
    deleteEntry: (key) => table.delete(table.normalize(key)),
    clearEntries: (backendId) => table.clear(backendId),
  };
  return product;
}
