import type { Backend } from '@tether/core';

/**
 * The pure part of the plugin: reading a tenant out of a user name and picking a backend in a
 * group. No Tether state here, so it is tested with plain values.
 */

/**
 * The tenant prefix of `username`: everything before the first of `separators`, or undefined when
 * there is no user name, no separator, or nothing before it (`:device42` names no tenant).
 */
export function tenantOf(username: string | undefined, separators: readonly string[]): string | undefined {
  if (!username) return undefined;
  let end = -1;
  for (const separator of separators) {
    const at = username.indexOf(separator);
    if (at !== -1 && (end === -1 || at < end)) end = at;
  }
  return end > 0 ? username.slice(0, end) : undefined;
}

/**
 * The backends of `group` that are offered right now, in the group's configured order. The core
 * offers only backends that can take a connection (ready, under maxconn, not just refused), and
 * the chain checks that a strategy returns one of the offered objects, so we return those objects.
 */
export function offeredMembers(group: readonly string[], offered: readonly Backend[]): Backend[] {
  const members: Backend[] = [];
  for (const name of group) {
    const backend = offered.find((b) => b.id === name);
    if (backend) members.push(backend);
  }
  return members;
}

/**
 * Fewest live connections per unit of weight; a tie goes to the backend listed first for the tenant,
 * so operators can read the outcome from the configuration.
 */
export function leastLoaded(members: readonly Backend[]): Backend | undefined {
  let best: Backend | undefined;
  for (const backend of members) {
    if (!best || backend.activeConnections / backend.weight < best.activeConnections / best.weight) best = backend;
  }
  return best;
}

/**
 * Weighted rendezvous (highest random weight) hashing of `key` over `members`: the same key always
 * gets the same backend while the group's offered members stay the same, in every Tether process
 * and after restarts, without a table. When a member drops out only its own keys move, which is
 * what a persistent MQTT session wants.
 */
export function rendezvous(key: string, members: readonly Backend[]): Backend | undefined {
  let best: Backend | undefined;
  let bestScore = -Infinity;
  for (const backend of members) {
    // u in (0, 1), uniform per (backend, key); weight / -ln(u) makes the win rate proportional to weight.
    const u = (hash32(`${backend.id}\u0000${key}`) + 0.5) / 2 ** 32;
    const score = backend.weight / -Math.log(u);
    if (score > bestScore) {
      bestScore = score;
      best = backend;
    }
  }
  return best;
}

/** FNV-1a over UTF-16 code units, then MurmurHash3's finalizer so similar names spread well. */
export function hash32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
