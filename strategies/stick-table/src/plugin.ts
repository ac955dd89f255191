import { defineStrategy, durationFormat, parseDuration, PLUGIN_API_VERSION } from '@tether/core';
import { createMemoryStickTable } from './memory-strategy.ts';
import { describeStore, parseStore, storeSchema } from './store-options.ts';

/** Tables created so far: each marks the connections it counted under its own attribute key. */
let instances = 0;

export interface StickTableConfig {
  size: number;
  expire: string | number;
  keyLength: number;
  mode: 'learn' | 'match-only';
  store: unknown;
}

/**
 * HAProxy's `stick on` for MQTT: a client whose key is in the table goes back to the backend that
 * holds its session; on a miss the rest of the chain decides and the table learns the answer once
 * the backend has accepted the connection. An entry whose backend is not available is passed over
 * (re-dispatched) and rewritten by the next successful connection.
 *
 * The table lives in this process (`store: { type: memory }`, the default) or in Redis, shared by
 * every Tether instance (`store: { type: redis, url }`, see docs/scale-out.md). The Redis code and
 * its client library are loaded only for a Redis store.
 */
export const stickTable = defineStrategy<StickTableConfig>({
  name: 'stick-table',
  kind: 'strategy',
  apiVersion: PLUGIN_API_VERSION,
  version: '0.1.0',
  description: 'Sticky key → backend table with LRU size bound and idle expiry (HAProxy stick-table), in memory or shared through Redis.',
  options: {
    size: { doc: 'Maximum number of entries; the least recently used idle entry is evicted to make room (HAProxy size).', format: (val: unknown) => {
        if (!Number.isInteger(val) || (val as number) < 1) throw new Error('must be a whole number of entries, at least 1');
      },
      default: 100_000,
    },
    expire: {
      doc: 'Idle time after which an entry is forgotten, counted from the last connect or disconnect (HAProxy expire).',
      format: durationFormat(),
      default: '30m',
    },
    keyLength: {
      doc: 'Keys longer than this many characters are stored as their SHA-256 digest ("sha256:…", 50 characters), never truncated (HAProxy len truncates); 1 to 65535.',
      format: (val: unknown) => {
        if (!Number.isInteger(val) || (val as number) < 1 || (val as number) > 65_535) throw new Error('must be a whole number of characters from 1 to 65535');
      },
      default: 128,
    },
    mode: { doc: 'learn: match and store; match-only: never store new entries.', format: ['learn', 'match-only'], default: 'learn' },
    // Where the table lives: this process, or Redis shared by every instance (docs/scale-out.md).
    store: storeSchema,
  },
  create(ctx, options) {
    const storedAttribute = `stick-table:stored:${++instances}`;
    // Counted from 0 at start, so that GET /stats lists them and a Prometheus rate() over them
    // sees their first increment (a series that appears at 1 has no earlier sample to rise from).
    for (const counter of ['hits', 'misses', 'redispatches', 'rewrites', 'full']) ctx.stats.inc(counter, 0);
    const common = { size: options.size, expireMs: parseDuration(options.expire)!, keyLength: options.keyLength, mode: options.mode, storedAttribute };
    const store = parseStore(options.store, process.env);
    if (store.type === 'memory') return createMemoryStickTable(ctx, common);
    // With several workers each keeps its own cache and connection: Redis is the shared copy, so
    // the IPC relay of the memory store is not used (docs/scale-out.md, "Workers").
    ctx.log.debug({ store: describeStore(store) }, 'stick table on a Redis store');
    return import('./redis/shared-stick-table.ts').then(({ createSharedStickTable }) => createSharedStickTable(ctx, { ...common, store }));
  },
});
