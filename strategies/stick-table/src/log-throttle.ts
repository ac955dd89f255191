import type { Logger } from '@tether/core';

/**
 * At most one warning line per kind every `intervalMs`: a Redis that is away or slow fails every
 * connection's request, and one line per connection would flood the log. The first occurrence is
 * logged at once; the next line of that kind says how many happened since (`occurrences`).
 */
export class LogThrottle {
  readonly #log: Logger;
  readonly #intervalMs: number;
  readonly #now: () => number;
  readonly #kinds = new Map<string, { last: number; count: number }>();

  constructor(log: Logger, intervalMs: number, now: () => number = Date.now) {
    this.#log = log;
    this.#intervalMs = intervalMs;
    this.#now = now;
  }

  warn(kind: string, fields: Record<string, unknown>, message: string): void {
    const now = this.#now();
    const seen = this.#kinds.get(kind);
    if (seen && now - seen.last < this.#intervalMs) {
      seen.count++;
      return;
    }
    this.#log.warn({ ...fields, occurrences: (seen?.count ?? 0) + 1 }, message);
    this.#kinds.set(kind, { last: now, count: 0 });
  }

  /** Starts the kind afresh (the condition ended): its next occurrence is logged at once. */
  reset(kind: string): void {
    this.#kinds.delete(kind);
  }
}
