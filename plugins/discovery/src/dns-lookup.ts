import { isIP } from 'node:net';
import { Resolver } from 'node:dns/promises';

export type RecordType = 'A' | 'AAAA' | 'A+AAAA' | 'SRV';

/** One usable answer: an address and port, with what the record said. */
export interface Found {
  /** Stable part of the backend's name: the address (A/AAAA) or the SRV target. */
  readonly key: string;
  readonly address: string;
  readonly port: number;
  /** SRV weight (0–65535); undefined for A/AAAA. */
  readonly weight?: number;
  readonly priority?: number;
  readonly record: 'A' | 'AAAA' | 'SRV';
}

export interface Answer {
  readonly found: readonly Found[];
  /** Smallest TTL seen, in seconds (undefined when none was given: SRV answers carry none in Node). */
  readonly ttl: number | undefined;
}

/** Codes that mean "the name has no such record now": an answer, not a failure. */
const EMPTY_CODES = new Set(['ENODATA', 'ENOTFOUND']);

export function isEmptyAnswer(err: unknown): boolean {
  return EMPTY_CODES.has((err as { code?: string })?.code ?? '');
}

/**
 * Queries one name through its own resolver (its servers, timeout and tries), never the process's
 * shared one: two providers with different resolvers do not see each other's settings.
 */
export class DnsLookup {
  readonly #resolver: Resolver;

  constructor(servers: readonly string[], timeoutMs: number, tries: number) {
    this.#resolver = new Resolver({ timeout: timeoutMs, tries });
    if (servers.length > 0) this.#resolver.setServers([...servers]);
  }

  cancel(): void {
    this.#resolver.cancel();
  }

  /** The records of `name`; an empty answer (NXDOMAIN, NODATA) is an empty list, other errors throw. */
  async query(type: RecordType, name: string, port: number): Promise<Answer> {
    if (type === 'SRV') return this.#srv(name);
    const families = type === 'A+AAAA' ? (['A', 'AAAA'] as const) : ([type] as const);
    const answers = await Promise.all(families.map((f) => this.#addresses(f, name)));
    const found = answers.flatMap((a, i) => a.map((r) => ({ key: r.address, address: r.address, port, record: families[i]! })));
    return { found, ttl: minTtl(answers.flat()) };
  }

  async #addresses(family: 'A' | 'AAAA', name: string): Promise<{ address: string; ttl: number }[]> {
    try {
      return family === 'A' ? await this.#resolver.resolve4(name, { ttl: true }) : await this.#resolver.resolve6(name, { ttl: true });
    } catch (err) {
      if (isEmptyAnswer(err)) return [];
      throw err;
    }
  }

  /**
   * SRV records, each target resolved through the same servers (a target that is an address is
   * taken as it is). A target without an address is left out; its record comes back when it has one.
   */
  async #srv(name: string): Promise<Answer> {
    let records;
    try {
      records = await this.#resolver.resolveSrv(name);
    } catch (err) {
      if (isEmptyAnswer(err)) return { found: [], ttl: undefined };
      throw err;
    }
    const ttls: number[] = [];
    const found = await Promise.all(records.map(async (r): Promise<Found | undefined> => {
      const target = r.name.replace(/\.$/, '');
      let address: string | undefined = isIP(target) ? target : undefined;
      if (!address) {
        const v4 = await this.#addresses('A', target);
        const all = v4.length > 0 ? v4 : await this.#addresses('AAAA', target);
        // The smallest address: the same one every time, whatever order the server answers in.
        address = all.map((a) => a.address).sort()[0];
        for (const a of all) ttls.push(a.ttl);
      }
      return address ? { key: target, address, port: r.port, weight: r.weight, priority: r.priority, record: 'SRV' } : undefined;
    }));
    return { found: found.filter((f): f is Found => f !== undefined), ttl: ttls.length > 0 ? Math.min(...ttls) : undefined };
  }
}

function minTtl(records: readonly { ttl: number }[]): number | undefined {
  return records.length === 0 ? undefined : Math.min(...records.map((r) => r.ttl));
}
