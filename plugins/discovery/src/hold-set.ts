import type { ProvidedBackend } from '@tether/core';

/**
 * The backends a provider shows, with HAProxy's `hold`: a backend no longer in the answers stays
 * until it has been missing for `holdMs`, so a DNS blip or an empty answer does not empty the
 * pool. Sorted by name, so the same backends always make the same list whatever the answer order.
 */
export class HoldSet {
  readonly #holdMs: number;
  readonly #entries = new Map<string, { backend: ProvidedBackend; seen: number }>();
  #text = '[]';

  constructor(holdMs: number) {
    this.#holdMs = holdMs;
  }

  /** Takes a complete answer at `now`; returns true when the shown set changed. */
  update(seen: readonly ProvidedBackend[], now: number): boolean {
    for (const backend of seen) this.#entries.set(backend.name, { backend, seen: now });
    for (const [name, entry] of this.#entries) {
      if (entry.seen !== now && now - entry.seen >= this.#holdMs) this.#entries.delete(name);
    }
    const text = JSON.stringify(this.current());
    const changed = text !== this.#text;
    this.#text = text;
    return changed;
  }

  /** Names missing from the last answer but still held. */
  held(now: number): string[] {
    return [...this.#entries].filter(([, e]) => e.seen !== now).map(([name]) => name);
  }

  current(): ProvidedBackend[] {
    return [...this.#entries.values()].map((e) => e.backend).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }
}
