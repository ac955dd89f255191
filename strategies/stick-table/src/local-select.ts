import { ABSTAIN, selected, type Backend, type ConnInfo, type Selection, type StatsScope } from '@tether/core';
import type { StickTable } from './stick-table.ts';

const REMEMBERED = Object.freeze({ remembered: true });

/** The backend named `id` among those offered to this connection, if it is one of them. */
export function findOffered(id: string, backends: readonly Backend[]): Backend | undefined {
  for (const b of backends) if (b.id === id) return b;
  return undefined;
}

/** What a connection's lookups were counted as so far (kept in its attributes under the table's own name). */
const HIT = 1;
const MISS = 2;
const REDISPATCH = 3;

/**
 * The table's answer from this process's entries alone, synchronously: the entry's backend when it
 * is offered (a hit), else abstain (a miss, or a redispatch when the entry's backend is not
 * available). `tether explain` (dryRun) peeks without refreshing the entry.
 *
 * The chain asks again on every retry (a backend refused the connection), so the counters count
 * connections, not lookups: `hits` and `misses` (and an entry's own `hits`) the first lookup of a
 * connection; `redispatches` once for a connection whose entry's backend it could not use, also
 * when that was found only on a retry. `counted` names the connection attribute that remembers.
 */
export function localSelect(table: StickTable, stats: StatsScope, conn: ConnInfo, backends: readonly Backend[], counted: string): Selection {
  if (!conn.key) return ABSTAIN;
  const key = table.normalize(conn.key);
  const before = conn.dryRun ? undefined : (conn.attributes.get(counted) as number | undefined);
  const owner = conn.dryRun ? table.peek(key) : table.match(key, before === undefined);
  if (owner === undefined) {
    if (before === undefined) count(stats, conn, counted, MISS, 'misses');
    return ABSTAIN;
  }
  const backend = findOffered(owner, backends);
  if (!backend) {
    if (before !== REDISPATCH) count(stats, conn, counted, REDISPATCH, 'redispatches');
    return ABSTAIN;
  }
  if (before === undefined) count(stats, conn, counted, HIT, 'hits');
  return selected(backend, REMEMBERED);
}

function count(stats: StatsScope, conn: ConnInfo, counted: string, outcome: number, counter: string): void {
  stats.inc(counter);
  if (!conn.dryRun) conn.attributes.set(counted, outcome);
}
