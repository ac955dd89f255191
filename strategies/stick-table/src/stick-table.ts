import type { Backend, TableEntry, TableQuery, TableView } from '@tether/core';
import { DIGEST_PREFIX, storedKey } from './stored-key.ts';

interface Entry {
  backend: string;
  /** Connections with this key spliced right now; an entry in use never expires or is evicted. */
  use: number;
  hits: number;
  lastSeen: number;
  /** When a shared copy (Redis) last had this entry's expiry refreshed; 0: never, or no shared copy. */
  syncedAt: number;
}

export interface StickTableOptions {
  readonly size: number;
  readonly expireMs: number;
  readonly keyLength: number;
  readonly now: () => number;
}

/** How many entries one sweep may remove, so a huge table never stalls the event loop. */
const SWEEP_BATCH = 10_000;

/**
 * Key → backend id, bounded and expiring like HAProxy's `stick-table type string len L size S
 * expire E`. Entries live in one of two Maps: `busy` while a connection uses them, `idle`
 * otherwise. `idle` is kept in least-recently-used order (re-inserting moves an entry to the end),
 * so eviction takes its first entry and expiry sweeps from its start until an entry is still
 * fresh: every operation is O(1), and long-lived connections never crowd out eviction.
 */
export class StickTable {
  readonly #idle = new Map<string, Entry>();
  readonly #busy = new Map<string, Entry>();
  #options: StickTableOptions;
  #evicted = 0;

  constructor(options: StickTableOptions) {
    this.#options = options;
  }

  get size(): number {
    return this.#idle.size + this.#busy.size;
  }

  get evicted(): number {
    return this.#evicted;
  }

  /**
   * Takes new options (a configuration reload changed them) and keeps the entries: a smaller
   * `size` evicts idle entries, least recently used first; a shorter `keyLength` stores the keys
   * now too long as their digests (so their clients keep matching); a longer one leaves the
   * digests as they are (those clients miss once, and are learned again under the whole key).
   */
  reconfigure(options: StickTableOptions): void {
    const shorter = options.keyLength < this.#options.keyLength;
    this.#options = options;
    if (shorter) {
      for (const map of [this.#idle, this.#busy]) {
        for (const [key, e] of [...map]) {
          // A stored digest is already in its final form (no raw key starts with the prefix).
          if (key.startsWith(DIGEST_PREFIX)) continue;
          const cut = this.normalize(key);
          if (cut === key) continue;
          map.delete(key);
          const kept = map.get(cut);
          const winner = !kept || kept.lastSeen < e.lastSeen ? e : kept;
          map.set(cut, kept ? { ...winner, use: e.use + kept.use } : e);
        }
      }
    }
    while (this.size > options.size && this.#evictOne());
  }

  /**
   * The key as stored: itself, or its SHA-256 digest when longer than `keyLength` (not HAProxy's
   * truncation, under which two ids sharing a prefix share an entry without a word).
   */
  normalize(key: string): string {
    return storedKey(key, this.#options.keyLength);
  }

  /**
   * The backend id stored for `key`, refreshing its idle timer; undefined on a miss. `hit`: count
   * it in the entry's `hits` (a connection's first lookup; retries of the same connection do not).
   */
  match(key: string, hit = true): string | undefined {
    const busy = this.#busy.get(key);
    if (busy) {
      if (hit) busy.hits++;
      this.#touch(busy);
      return busy.backend;
    }
    const idle = this.#liveIdle(key);
    if (!idle) return undefined;
    if (hit) idle.hits++;
    this.#touch(idle);
    this.#idle.delete(key);
    this.#idle.set(key, idle);
    return idle.backend;
  }

  /** The backend id stored for `key` without touching anything (for explain). */
  peek(key: string): string | undefined {
    return (this.#busy.get(key) ?? this.#liveIdle(key))?.backend;
  }

  /** Records that a connection with `key` is now spliced to `backend`. Returns false when full. */
  store(key: string, backend: Backend): boolean {
    let entry = this.#busy.get(key);
    if (!entry) {
      entry = this.#liveIdle(key);
      if (entry) this.#idle.delete(key);
      else if (this.size >= this.#options.size && !this.#evictOne()) return false;
      entry ??= { backend: backend.id, use: 0, hits: 0, lastSeen: 0, syncedAt: 0 };
      this.#busy.set(key, entry);
    }
    entry.backend = backend.id;
    entry.use++;
    this.#touch(entry);
    return true;
  }

  /** A connection with `key` closed: when it was the last, the entry is idle from now on. */
  release(key: string): void {
    const entry = this.#busy.get(key);
    if (!entry) return;
    entry.lastSeen = this.#options.now();
    if (--entry.use > 0) return;
    this.#busy.delete(key);
    this.#idle.set(key, entry);
  }

  /**
   * What another worker learned or saw (see peer-sync.ts): `key` is on `backendId` as of
   * `lastSeen`. An existing entry gets the later `lastSeen` and, when `overwrite` (a learn, not a
   * mere touch), the backend; it does not count a `use` or a hit here. A missing key is added as an
   * idle entry when `create` (evicting like `store`). Returns false when nothing was stored.
   */
  remote(key: string, backendId: string, options: { readonly overwrite: boolean; readonly create: boolean; readonly lastSeen?: number }): boolean {
    const lastSeen = options.lastSeen ?? this.#options.now();
    const busy = this.#busy.get(key);
    if (busy) {
      if (options.overwrite) busy.backend = backendId;
      busy.lastSeen = Math.max(busy.lastSeen, lastSeen);
      return true;
    }
    let entry = this.#liveIdle(key);
    if (entry) {
      this.#idle.delete(key);
      if (options.overwrite) entry.backend = backendId;
      entry.lastSeen = Math.max(entry.lastSeen, lastSeen);
    } else {
      if (!options.create) return false;
      if (this.size >= this.#options.size && !this.#evictOne()) return false;
      entry = { backend: backendId, use: 0, hits: 0, lastSeen, syncedAt: 0 };
    }
    // Re-inserted at the end: the idle Map stays in least-recently-seen order.
    this.#idle.set(key, entry);
    return true;
  }

  /**
   * Every entry as [key, backend, milliseconds since last seen], idle ones from the least recently
   * seen, then those in use (seen now: they are live), in chunks of at most `chunkSize`.
   */
  *chunks(chunkSize: number): Generator<[string, string, number][]> {
    const now = this.#options.now();
    // Rows first: the consumer may yield to the event loop between chunks while entries move.
    const rows: [string, string, number][] = [];
    for (const [key, e] of this.#idle) if (now - e.lastSeen < this.#options.expireMs) rows.push([key, e.backend, now - e.lastSeen]);
    for (const [key, e] of this.#busy) rows.push([key, e.backend, 0]);
    for (let i = 0; i < rows.length; i += chunkSize) yield rows.slice(i, i + chunkSize);
  }

  /** Keys with a live connection in this process, with their backend (a copy). */
  busyEntries(): [string, string][] {
    return [...this.#busy].map(([key, e]) => [key, e.backend]);
  }

  /** A shared copy's expiry of `key` was refreshed at `at` (see the Redis store's touches). */
  markSynced(key: string, at: number): void {
    const entry = this.#busy.get(key) ?? this.#idle.get(key);
    if (entry) entry.syncedAt = at;
  }

  get(key: string): Readonly<Entry> | undefined {
    return this.#busy.get(key) ?? this.#liveIdle(key);
  }

  delete(key: string): boolean {
    return this.#busy.delete(key) || this.#idle.delete(key);
  }

  /** Drops idle entries past their expiry, oldest first, at most SWEEP_BATCH at a time. */
  sweep(): number {
    const now = this.#options.now();
    let removed = 0;
    for (const [key, entry] of this.#idle) {
      if (removed >= SWEEP_BATCH || now - entry.lastSeen < this.#options.expireMs) break;
      this.#idle.delete(key);
      removed++;
    }
    return removed;
  }

  /**
   * The entries for the admin API: idle ones from the least recently seen, then those in use. A
   * page starts at `query.cursor` (an offset in that order) and holds at most `query.limit`
   * entries; `cursor` in the answer is where the next page starts. `query.key` asks for one key.
   */
  view(name: string, query: TableQuery = {}): TableView {
    const base = { name, type: 'string' as const, size: this.#options.size, used: this.size, store: 'memory' };
    if (query.key !== undefined) {
      const key = this.normalize(query.key);
      const entry = this.#busy.get(key) ?? this.#liveIdle(key);
      return { ...base, entries: entry ? [this.#row(key, entry, this.#options.now())] : [] };
    }
    const limit = query.limit ?? Infinity;
    const start = query.cursor !== undefined && /^\d+$/.test(query.cursor) ? Number(query.cursor) : 0;
    const now = this.#options.now();
    const entries: TableEntry[] = [];
    let position = 0;
    for (const map of [this.#idle, this.#busy]) {
      for (const [key, e] of map) {
        if (position++ < start) continue;
        if (entries.length >= limit) return { ...base, entries, cursor: String(start + entries.length) };
        entries.push(this.#row(key, e, now));
      }
    }
    return { ...base, entries };
  }

  #row(key: string, e: Entry, now: number): TableEntry {
    const expiresInMs = e.use > 0 ? this.#options.expireMs : Math.max(0, e.lastSeen + this.#options.expireMs - now);
    return { key, backend: e.backend, use: e.use, hits: e.hits, lastSeen: e.lastSeen, expiresInMs };
  }

  /**
   * The operator points `key` at `backendId` (HAProxy `set table`): an entry in use keeps its
   * `use`, a new one is idle (it counts no connection). Returns false when the table is full.
   */
  set(key: string, backendId: string): boolean {
    return this.remote(key, backendId, { overwrite: true, create: true });
  }

  /** Forgets every entry, or those on `backendId`; returns how many. Entries in use go too. */
  clear(backendId?: string): number {
    let removed = 0;
    for (const map of [this.#idle, this.#busy]) {
      for (const [key, e] of map) {
        if (backendId !== undefined && e.backend !== backendId) continue;
        map.delete(key);
        removed++;
      }
    }
    return removed;
  }

  #liveIdle(key: string): Entry | undefined {
    const entry = this.#idle.get(key);
    if (entry && this.#options.now() - entry.lastSeen >= this.#options.expireMs) {
      this.#idle.delete(key);
      return undefined;
    }
    return entry;
  }

  #touch(entry: Entry): void {
    entry.lastSeen = this.#options.now();
  }

  /** Evicts the least recently used idle entry; false when every entry is in use. */
  #evictOne(): boolean {
    for (const key of this.#idle.keys()) {
      this.#idle.delete(key);
      this.#evicted++;
      return true;
    }
    return false;
  }
}
