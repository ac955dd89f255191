/**
 * Connect rate limits per source address: a token bucket each (`rate` connects per second, up to
 * `burst` at once), like HAProxy's `sc_conn_rate` with a `tcp-request connection reject`. Buckets
 * are made on a source's first connect and dropped by `sweep` once full again, so idle sources
 * cost nothing; at most `size` are kept (past it a new source is let through uncounted).
 */
export interface SourceLimitSettings {
  /** Connects per second per source; 0 turns the limit off. */
  readonly rate: number;
  readonly burst: number;
  readonly size: number;
}

interface Bucket {
  tokens: number;
  at: number;
}

export class SourceLimiter {
  readonly #buckets = new Map<string, Bucket>();
  readonly #settings: SourceLimitSettings;
  readonly #now: () => number;

  constructor(settings: SourceLimitSettings, now: () => number) {
    this.#settings = settings;
    this.#now = now;
  }

  get enabled(): boolean {
    return this.#settings.rate > 0;
  }

  get tracked(): number {
    return this.#buckets.size;
  }

  /** Takes a token for a connect from `source`; false when its bucket is empty. */
  take(source: string): boolean {
    const { rate, burst, size } = this.#settings;
    if (rate === 0) return true;
    const now = this.#now();
    let b = this.#buckets.get(source);
    if (!b) {
      if (this.#buckets.size >= size) return true;
      b = { tokens: burst, at: now };
      this.#buckets.set(source, b);
    } else {
      b.tokens = Math.min(burst, b.tokens + ((now - b.at) / 1000) * rate);
      b.at = now;
    }
    if (b.tokens < 1) return false;
    b.tokens--;
    return true;
  }

  /** Drops the buckets that have refilled (their sources are back to a clean slate); returns how many. */
  sweep(): number {
    const { rate, burst } = this.#settings;
    const now = this.#now();
    let removed = 0;
    for (const [source, b] of this.#buckets) {
      if (b.tokens + ((now - b.at) / 1000) * rate < burst) continue;
      this.#buckets.delete(source);
      removed++;
    }
    return removed;
  }
}
