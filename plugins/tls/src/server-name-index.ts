/**
 * Finds what to serve for a TLS server name (SNI): an exact name first, then a wildcard
 * (`*.example.com` matches `a.example.com`, not `example.com` nor `a.b.example.com`, as clients
 * match wildcards). The first entry added for a name wins, so configuration order decides.
 */
export class ServerNameIndex<T> {
  readonly #exact = new Map<string, T>();
  readonly #wildcard = new Map<string, T>();

  add(name: string, value: T): void {
    const lower = name.toLowerCase();
    const map = lower.startsWith('*.') ? this.#wildcard : this.#exact;
    const key = lower.startsWith('*.') ? lower.slice(2) : lower;
    if (!map.has(key)) map.set(key, value);
  }

  find(servername: string): T | undefined {
    const name = servername.toLowerCase().replace(/\.$/, '');
    const exact = this.#exact.get(name);
    if (exact !== undefined) return exact;
    const dot = name.indexOf('.');
    return dot > 0 ? this.#wildcard.get(name.slice(dot + 1)) : undefined;
  }

  get names(): string[] {
    return [...this.#exact.keys(), ...[...this.#wildcard.keys()].map((k) => `*.${k}`)];
  }
}
