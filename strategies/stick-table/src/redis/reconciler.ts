import type { Logger, StatsScope } from '@tether/core';
import type { StickTable } from '../stick-table.ts';
import type { TouchBatch } from '../touch-batch.ts';
import type { RedisStore } from './redis-store.ts';

/**
 * After a (re)connect to Redis, this instance's cache and Redis are put back in step:
 *
 * - `write-back` (Redis lost its data, or this is the first connect): every cached entry is
 *   claimed again with the TTL it has left; where another instance was first, the cache takes its
 *   backend.
 * - `revalidate` (Redis kept its data, but invalidations may have been missed while the
 *   subscriber was away): every cached entry not waiting to be touched is read; different ones
 *   are updated, missing idle ones dropped, missing ones in use here written back.
 *
 * In chunks of CHUNK entries, one round trip each, so connections are served in between.
 */

type Kind = 'write-back' | 'revalidate';

export interface ReconcilerDeps {
  readonly table: StickTable;
  readonly store: RedisStore;
  readonly touches: TouchBatch;
  readonly expireMs: number;
  readonly stats: StatsScope;
  readonly log: Logger;
  readonly now: () => number;
  /** The table is closing: stop. */
  readonly closed: () => boolean;
  /** Redis holds `owner` for a key the cache has on another backend. */
  readonly conflict: (key: string, owner: string) => void;
}

const CHUNK = 500;

export class Reconciler {
  readonly #deps: ReconcilerDeps;
  /** A write-back or revalidation waiting to run, and whether one is running. */
  #needed: Kind | undefined;
  #running = false;

  constructor(deps: ReconcilerDeps) {
    this.#deps = deps;
  }

  /** Runs one write-back or revalidation at a time; a write-back asked for meanwhile wins over a revalidation. */
  request(kind: Kind): void {
    if (this.#needed !== 'write-back') this.#needed = kind;
    if (this.#running) return;
    this.#running = true;
    void (async () => {
      try {
        while (this.#needed && this.#deps.store.ready && !this.#deps.closed()) {
          const next = this.#needed;
          this.#needed = undefined;
          if (!(await this.#once(next))) {
            // Redis went away midway: do it again at the next connect.
            if (this.#needed !== 'write-back') this.#needed = next;
            break;
          }
        }
      } finally {
        this.#running = false;
      }
    })();
  }

  /** One pass over the cache (see above); false when Redis stopped answering midway. */
  async #once(kind: Kind): Promise<boolean> {
    const { table, store, touches, stats, log } = this.#deps;
    const counts = { entries: 0, wroteBack: 0, conflicts: 0, dropped: 0 };
    const now = this.#deps.now();
    for (const chunk of table.chunks(CHUNK)) {
      if (this.#deps.closed()) return true;
      const rows = kind === 'revalidate' ? chunk.filter(([key]) => !touches.has(key)) : chunk;
      counts.entries += rows.length;
      const owners = kind === 'write-back'
        ? await store.writeBack(rows.map(([key, backend, age]) => [key, backend, this.#deps.expireMs - age] as const))
        : await store.read(rows.map(([key]) => key));
      for (let i = 0; i < rows.length; i++) {
        const [key, backend] = rows[i]!;
        const owner = owners[i];
        if (owner === undefined) return false;
        if (owner === null) {
          if (kind === 'write-back') counts.wroteBack++;
          else {
            const entry = table.get(key);
            // Gone from Redis (deleted by an operator, or lost in a failover): an idle entry is
            // dropped; one a connection uses here is written back (its session is on that broker).
            if (entry && entry.use > 0) touches.touch(key, entry.backend);
            else if (entry?.backend === backend) {
              table.delete(key);
              counts.dropped++;
            }
          }
        } else if (owner !== backend) {
          this.#deps.conflict(key, owner);
          counts.conflicts++;
        }
      }
    }
    if (counts.wroteBack) stats.inc('store_writebacks', counts.wroteBack);
    if (counts.entries > 0) {
      log.info({ store: store.describe(), ...counts, ms: this.#deps.now() - now }, kind === 'write-back' ? 'stick table store: cache written back to Redis' : 'stick table store: cache checked against Redis');
    }
    return true;
  }
}
