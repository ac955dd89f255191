import { ABSTAIN, selected, type Backend, type ConnInfo, type Selection, type StatsScope } from '@tether/core';
import type { StickTable } from './stick-table.ts';

const REMEMBERED = Object.freeze({ remembered: true });

/** The backend named `id` among those offered to this connection, if it is one of them. */
export function findOffered(id: string, backends: readonly Backend[]): Backend | undefined {
  for (const b of backends) if (b.id === id) return b;
  return undefined;
}

/**
 * The table's answer from this process's entries alone, synchronously: the entry's backend when it
 * is offered (a hit), else abstain (a miss, or a redispatch when the entry's backend is not
 * available). `tether explain` (dryRun) peeks without refreshing the entry.
 */
export function localSelect(table: StickTable, stats: StatsScope, conn: ConnInfo, backends: readonly Backend[]): Selection {
  if (!conn.key) return ABSTAIN;
  const key = table.normalize(conn.key);
  const owner = conn.dryRun ? table.peek(key) : table.match(key);
  if (owner === undefined) {
    stats.inc('misses');
    return ABSTAIN;
  }
  const backend = findOffered(owner, backends);
  if (!backend) {
    stats.inc('redispatches');
    return ABSTAIN;
  }
  stats.inc('hits');
  return selected(backend, REMEMBERED);
}
