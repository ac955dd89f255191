/**
 * Finds kick loops: two devices configured with the same client id take each other's session
 * for ever (each connect makes the broker close the other, which reconnects at once). The sign is
 * a *takeover*: a connection of a key while another connection of that key is live, or closed
 * only `recentMs` ago. `takeovers` of them within `windowMs` start a back-off during which every
 * new connection of the key is refused (the live one is left alone, so one device keeps working).
 * A takeover during probation (after a back-off, until `windowMs` passes without one) starts the
 * next back-off at once, twice as long, up to `maxBackoffMs`.
 */
export interface KickLoopSettings {
  /** Takeovers within the window that make a loop; 0 turns detection off. */
  readonly takeovers: number;
  readonly windowMs: number;
  readonly recentMs: number;
  readonly backoffMs: number;
  readonly maxBackoffMs: number;
  /** Most keys followed at once (live connections included); past it new keys are not followed. */
  readonly size: number;
}

interface KeyState {
  live: number;
  closedAt: number;
  /** Takeover times, a ring of `takeovers` slots (allocated at the first takeover). */
  ring: number[] | undefined;
  next: number;
  /** Takeovers seen since the key was first caught in a loop (shown as its hits). */
  count: number;
  lastTakeover: number;
  /** Current back-off, 0 when the key is not in a loop (nor on probation). */
  backoffMs: number;
  /** Refused until then. */
  until: number;
  /** Distinct source addresses of its takeovers, a few, for the log line and the table. */
  sources: string[];
}

export type Verdict =
  | { readonly kind: 'admit' }
  | { readonly kind: 'refuse'; readonly retryInMs: number; readonly started: boolean; readonly state: Readonly<Pick<KeyState, 'count' | 'backoffMs' | 'sources'>> };

const ADMIT: Verdict = Object.freeze({ kind: 'admit' });
const MAX_SOURCES = 4;

export interface LoopRow {
  readonly key: string;
  readonly live: number;
  readonly takeovers: number;
  readonly backoffMs: number;
  readonly refusingForMs: number;
  readonly lastTakeover: number;
  readonly sources: readonly string[];
}

export class KickLoopDetector {
  readonly #keys = new Map<string, KeyState>();
  readonly #settings: KickLoopSettings;
  readonly #now: () => number;

  constructor(settings: KickLoopSettings, now: () => number) {
    this.#settings = settings;
    this.#now = now;
  }

  get tracked(): number {
    return this.#keys.size;
  }

  /** A new connection of `key` from `source` asks to be let through. */
  admit(key: string, source: string): Verdict {
    const s = this.#keys.get(key);
    if (!s || this.#settings.takeovers === 0) return ADMIT;
    const now = this.#now();
    if (s.until > now) return { kind: 'refuse', retryInMs: s.until - now, started: false, state: s };
    if (s.live === 0 && now - s.closedAt >= this.#settings.recentMs) {
      this.#endProbation(s, now);
      return ADMIT;
    }
    return this.#takeover(s, source, now);
  }

  /**
   * A connection of `key` was spliced (it may kick the next one out). False when the key is not
   * followed (past `size`): its close must then not be counted either.
   */
  opened(key: string): boolean {
    const s = this.#keys.get(key);
    if (s) s.live++;
    else if (this.#keys.size < this.#settings.size) this.#keys.set(key, { live: 1, closedAt: 0, ring: undefined, next: 0, count: 0, lastTakeover: 0, backoffMs: 0, until: 0, sources: [] });
    else return false;
    return true;
  }

  closed(key: string): void {
    const s = this.#keys.get(key);
    if (!s || s.live === 0) return;
    s.live--;
    s.closedAt = this.#now();
  }

  /** Forgets a key's loop (the operator's `tether table delete`); its live count stays. */
  forgive(key: string): boolean {
    const s = this.#keys.get(key);
    if (!s || s.backoffMs === 0) return false;
    this.#reset(s);
    return true;
  }

  forgiveAll(): number {
    let n = 0;
    for (const s of this.#keys.values()) {
      if (s.backoffMs === 0) continue;
      this.#reset(s);
      n++;
    }
    return n;
  }

  /** Keys in a loop or on probation, most recent takeover first. */
  loops(): LoopRow[] {
    const now = this.#now();
    const rows: LoopRow[] = [];
    for (const [key, s] of this.#keys) {
      if (s.backoffMs === 0) continue;
      rows.push({ key, live: s.live, takeovers: s.count, backoffMs: s.backoffMs, refusingForMs: Math.max(0, s.until - now), lastTakeover: s.lastTakeover, sources: s.sources });
    }
    return rows.sort((a, b) => b.lastTakeover - a.lastTakeover);
  }

  /** Drops keys with no live connection, no recent close and no loop to remember; returns how many. */
  sweep(): number {
    const now = this.#now();
    let removed = 0;
    for (const [key, s] of this.#keys) {
      this.#endProbation(s, now);
      if (s.live > 0 || now - s.closedAt < this.#settings.recentMs || s.backoffMs > 0) continue;
      this.#keys.delete(key);
      removed++;
    }
    return removed;
  }

  #takeover(s: KeyState, source: string, now: number): Verdict {
    const { takeovers, windowMs, backoffMs, maxBackoffMs } = this.#settings;
    s.lastTakeover = now;
    if (s.sources.length < MAX_SOURCES && !s.sources.includes(source)) s.sources.push(source);
    const ring = (s.ring ??= new Array<number>(takeovers).fill(-Infinity));
    ring[s.next] = now;
    s.next = (s.next + 1) % takeovers;
    // The slot now next is the oldest of the last `takeovers` takeovers, this one included.
    const oldest = ring[s.next]!;
    if (s.backoffMs > 0) {
      // On probation: the loop goes on, so the next back-off starts at once and is longer.
      s.count++;
      s.backoffMs = Math.min(maxBackoffMs, s.backoffMs * 2);
      s.until = now + s.backoffMs;
      return { kind: 'refuse', retryInMs: s.backoffMs, started: false, state: s };
    }
    if (now - oldest >= windowMs) return ADMIT;
    s.count = takeovers;
    s.backoffMs = backoffMs;
    s.until = now + backoffMs;
    return { kind: 'refuse', retryInMs: backoffMs, started: true, state: s };
  }

  /** Probation ends once a window passes after the back-off with no takeover. */
  #endProbation(s: KeyState, now: number): void {
    if (s.backoffMs > 0 && s.until <= now && now - Math.max(s.until, s.lastTakeover) >= this.#settings.windowMs) this.#reset(s);
  }

  #reset(s: KeyState): void {
    s.backoffMs = 0;
    s.until = 0;
    s.count = 0;
    s.ring = undefined;
    s.next = 0;
    s.sources = [];
  }
}
