import { ABSTAIN, defineStrategy, parseDuration, PLUGIN_API_VERSION, selected, type Backend, type Strategy } from '@tether/core';
import { syncAcrossWorkers, type PeerSync } from './peer-sync.ts';
import { StickTable } from './stick-table.ts';

/** Tables created so far: each marks the connections it counted under its own attribute key. */
let instances = 0;

/**
 * What a stick table hands to the product that replaces it on a reload (its options changed): the
 * entries, and the peer sync in use. Both products share it, so a connection spliced before the
 * reload and closed after it releases its entry in the one table, through the current sync.
 */
interface Shared {
  readonly table: StickTable;
  sync: PeerSync | undefined;
}

const SHARED = Symbol('stick-table.shared');

function sharedOf(previous: unknown): Shared | undefined {
  return previous && typeof previous === 'object' ? (previous as { [SHARED]?: Shared })[SHARED] : undefined;
}

export interface StickTableConfig {
  size: number;
  expire: string | number;
  keyLength: number;
  mode: 'learn' | 'match-only';
}

/**
 * HAProxy's `stick on` for MQTT: a client whose key is in the table goes back to the backend that
 * holds its session; on a miss the rest of the chain decides and the table learns the answer once
 * the backend has accepted the connection. An entry whose backend is not available is passed over
 * (re-dispatched) and rewritten by the next successful connection.
 */
export const stickTable = defineStrategy<StickTableConfig>({
  name: 'stick-table',
  kind: 'strategy',
  apiVersion: PLUGIN_API_VERSION,
  version: '0.1.0',
  description: 'Sticky key → backend table with LRU size bound and idle expiry (HAProxy stick-table).',
  options: {
    size: { doc: 'Maximum number of entries; the least recently used idle entry is evicted to make room (HAProxy size).', format: (val: unknown) => {
        if (!Number.isInteger(val) || (val as number) < 1) throw new Error('must be a whole number of entries, at least 1');
      },
      default: 100_000,
    },
    expire: {
      doc: 'Idle time after which an entry is forgotten, counted from the last connect or disconnect (HAProxy expire).',
      format: (val: unknown) => {
        if (parseDuration(val) === undefined) throw new Error('must be a duration such as "30m", "600s" or milliseconds');
      },
      default: '30m',
    },
    keyLength: { doc: 'Keys longer than this many characters are truncated (HAProxy len).', format: 'nat', default: 128 },
    mode: { doc: 'learn: match and store; match-only: never store new entries.', format: ['learn', 'match-only'], default: 'learn' },
  },
  create(ctx, options) {
    // Marks a connection this table counted in an entry's `use`, so only those release it (per
    // instance: two stick tables in one chain must not release each other's entries).
    const STORED = `stick-table:stored:${++instances}`;
    // Counted from 0 at start, so that GET /stats lists them and a Prometheus rate() over them
    // sees their first increment (a series that appears at 1 has no earlier sample to rise from).
    for (const counter of ['hits', 'misses', 'redispatches', 'rewrites', 'full']) ctx.stats.inc(counter, 0);
    const expireMs = parseDuration(options.expire)!;
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
    const findReady = (id: string, backends: readonly Backend[]): Backend | undefined => {
      for (const b of backends) if (b.id === id) return b;
      return undefined;
    };
    const product: Strategy & { [SHARED]: Shared } = {
      [SHARED]: shared,
      select(conn, backends) {
        if (!conn.key) return ABSTAIN;
        const key = table.normalize(conn.key);
        const owner = conn.dryRun ? table.peek(key) : table.match(key);
        if (owner === undefined) {
          ctx.stats.inc('misses');
          return ABSTAIN;
        }
        const backend = findReady(owner, backends);
        if (!backend) {
          ctx.stats.inc('redispatches');
          return ABSTAIN;
        }
        ctx.stats.inc('hits');
        return selected(backend, { remembered: true });
      },
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
  },
});
