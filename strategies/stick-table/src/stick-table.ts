import type { Backend, TableEntry, TableView } from '@tether/core';

interface Entry {
  backend: string;
  /** Connections with this key spliced right now; an entry in use never expires or is evicted. */
  use: number;
  hits: number;
  lastSeen: number;
}

export interface StickTableOptions {
  readonly size: number;
  readonly expireMs: number;
  readonly keyLength: number;
  readonly now: () => number;
}

/** How many entries one sweep may look at, so a huge table never stalls the event loop. */
const SWEEP_BATCH = 10_000;
/** How far eviction looks for an idle entry before giving up on storing a new one. */
const EVICT_SCAN = 64;

/**
 * Key → backend id, bounded and expiring like HAProxy's `stick-table type string len L size S
 * expire E`. A Map kept in least-recently-used order (touch = delete + set) makes lookup, store and
 * eviction O(1), and lets expiry sweep from the oldest end until it meets a live entry.
 */
export class StickTable {
  readonly #entries = new Map<string, Entry>();
  readonly #options: StickTableOptions;
  #evicted = 0;

  constructor(options: StickTableOptions) {
    this.#options = options;
  }

  get size(): number {
    return this.#entries.size;
  }

  get evicted(): number {
    return this.#evicted;
  }

  /** Truncates like HAProxy's `len`: longer keys share the entry of their prefix. */
  normalize(key: string): string {
    return key.length > this.#options.keyLength ? key.slice(0, this.#options.keyLength) : key;
  }

  /** The backend id stored for `key`, refreshing its idle timer; undefined on a miss. */
  match(key: string): string | undefined {
    const entry = this.#live(key);
    if (!entry) return undefined;
    this.#touch(key, entry);
    return entry.backend;
  }

  /** Records that a connection with `key` is now spliced to `backend`. Returns false when full. */
  store(key: string, backend: Backend): boolean {
    let entry = this.#live(key);
    if (!entry) {
      if (this.#entries.size >= this.#options.size && !this.#evictOne()) return false;
      entry = { backend: backend.id, use: 0, hits: 0, lastSeen: 0 };
    }
    entry.backend = backend.id;
    entry.use++;
    this.#touch(key, entry);
    return true;
  }

  /** A connection with `key` closed: the entry is idle from now on (sessions expire from disconnect). */
  release(key: string): void {
    const entry = this.#entries.get(key);
    if (!entry) return;
    if (entry.use > 0) entry.use--;
    entry.lastSeen = this.#options.now();
    this.#entries.delete(key);
    this.#entries.set(key, entry);
  }

  get(key: string): Readonly<Entry> | undefined {
    return this.#live(key);
  }

  delete(key: string): boolean {
    return this.#entries.delete(key);
  }

  /** Drops idle entries past their expiry, oldest first, at most SWEEP_BATCH looked at. */
  sweep(): number {
    const now = this.#options.now();
    let removed = 0;
    let seen = 0;
    for (const [key, entry] of this.#entries) {
      if (++seen > SWEEP_BATCH) break;
      if (entry.use > 0) continue;
      if (now - entry.lastSeen < this.#options.expireMs) break;
      this.#entries.delete(key);
      removed++;
    }
    return removed;
  }

  view(name: string, limit = Infinity): TableView {
    const now = this.#options.now();
    const entries: TableEntry[] = [];
    for (const [key, e] of this.#entries) {
      if (entries.length >= limit) break;
      const expiresInMs = e.use > 0 ? this.#options.expireMs : Math.max(0, e.lastSeen + this.#options.expireMs - now);
      entries.push({ key, backend: e.backend, use: e.use, hits: e.hits, lastSeen: e.lastSeen, expiresInMs });
    }
    return { name, type: 'string', size: this.#options.size, used: this.#entries.size, entries };
  }

  #live(key: string): Entry | undefined {
    const entry = this.#entries.get(key);
    if (entry && entry.use === 0 && this.#options.now() - entry.lastSeen >= this.#options.expireMs) {
      this.#entries.delete(key);
      return undefined;
    }
    return entry;
  }

  #touch(key: string, entry: Entry): void {
    entry.hits++;
    entry.lastSeen = this.#options.now();
    this.#entries.delete(key);
    this.#entries.set(key, entry);
  }

  #evictOne(): boolean {
    let scanned = 0;
    for (const [key, entry] of this.#entries) {
      if (++scanned > EVICT_SCAN) return false;
      if (entry.use > 0) continue;
      this.#entries.delete(key);
      this.#evicted++;
      return true;
    }
    return false;
  }
}
