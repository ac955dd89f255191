/**
 * Touches collected and sent in batches: "key K (on backend B) was seen now". A table shared with
 * others (the other workers over IPC, or Redis) must refresh a key's idle timer there on every
 * connect and disconnect, but one message or command per event would cost more than the
 * connection itself on a busy key; so touches wait here, one per key, and go out together every
 * `flushMs`. Keys with a live connection are also re-touched every `announceMs` (a third of
 * `expire`), so that where they are idle (another worker, Redis's TTL) they do not expire while the
 * connection lives.
 *
 * The sink may be asynchronous and may fail (Redis away): it hands back the rows it could not
 * deliver with `requeue`, and they go out with the next flush unless a newer touch replaced them.
 */

export type TouchRow = readonly [key: string, backend: string];

export interface TouchBatchOptions {
  readonly flushMs: number;
  readonly announceMs: number;
  /** Keys with a live connection here, with their backend. */
  readonly busyEntries: () => Iterable<TouchRow>;
  /** Delivers one flush's rows. While a returned promise is pending, the next flush waits. */
  readonly flush: (rows: TouchRow[]) => void | Promise<void>;
  /** Aborting stops the timers. */
  readonly signal: AbortSignal;
}

export class TouchBatch {
  #pending = new Map<string, string>();
  #flushing = false;
  readonly #options: TouchBatchOptions;
  readonly #timers: NodeJS.Timeout[];

  constructor(options: TouchBatchOptions) {
    this.#options = options;
    const flushTimer = setInterval(() => void this.flush(), options.flushMs);
    const announceTimer = setInterval(() => this.#announce(), options.announceMs);
    this.#timers = [flushTimer, announceTimer];
    for (const t of this.#timers) t.unref();
    options.signal.addEventListener('abort', () => this.stop(), { once: true });
  }

  /** Waiting rows (for the owner's view of what is not yet delivered). */
  get size(): number {
    return this.#pending.size;
  }

  touch(key: string, backend: string): void {
    this.#pending.set(key, backend);
  }

  has(key: string): boolean {
    return this.#pending.has(key);
  }

  /** The key was deleted or moved elsewhere: its touch must not recreate it. */
  forget(key: string): void {
    this.#pending.delete(key);
  }

  /** Forgets every waiting touch, or those for `backend`. */
  forgetAll(backend?: string): void {
    if (backend === undefined) this.#pending.clear();
    else for (const [key, b] of this.#pending) if (b === backend) this.#pending.delete(key);
  }

  /** Rows a flush could not deliver: kept for the next one, unless touched again meanwhile. */
  requeue(rows: readonly TouchRow[]): void {
    for (const [key, backend] of rows) if (!this.#pending.has(key)) this.#pending.set(key, backend);
  }

  /** Sends what is waiting now (also called by the timer); resolves when the sink is done. */
  async flush(): Promise<void> {
    if (this.#flushing || this.#pending.size === 0) return;
    const rows: TouchRow[] = [...this.#pending];
    this.#pending = new Map();
    this.#flushing = true;
    try {
      await this.#options.flush(rows);
    } finally {
      this.#flushing = false;
    }
  }

  stop(): void {
    for (const t of this.#timers) clearInterval(t);
  }

  #announce(): void {
    for (const [key, backend] of this.#options.busyEntries()) this.#pending.set(key, backend);
  }
}

/**
 * How often the keys in use here are re-announced, so that the other copies, where those entries
 * are idle, do not let them expire while the connection lives: a third of `expire`, between 1 s
 * and 10 min.
 */
export function announceInterval(expireMs: number): number {
  return Math.min(Math.max(Math.floor(expireMs / 3), 1_000), 600_000);
}

/**
 * How long touches are collected before they are sent: one IPC message (or one Redis pipeline) per
 * interval instead of one per disconnect, for expiry clocks that agree to within this much.
 */
export const TOUCH_FLUSH_MS = 1_000;
