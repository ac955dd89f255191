import { BlockList, isIPv4, isIPv6 } from 'node:net';

/**
 * The peers allowed to send a PROXY header: addresses and CIDR blocks of either family, matched
 * with Node's BlockList (which also matches an IPv4 peer seen as `::ffff:a.b.c.d` on a dual-stack
 * listener against IPv4 rules).
 */
export class TrustedSources {
  readonly #list = new BlockList();
  readonly entries: readonly string[];

  private constructor(entries: readonly string[]) {
    this.entries = entries;
  }

  /** Throws an Error naming the first entry that is neither an address nor a CIDR block. */
  static parse(entries: readonly string[]): TrustedSources {
    const sources = new TrustedSources(entries);
    for (const entry of entries) sources.#add(entry);
    return sources;
  }

  allows(address: string | undefined): boolean {
    if (!address) return false;
    const bare = address.split('%')[0]!;
    if (isIPv4(bare)) return this.#list.check(bare, 'ipv4');
    if (isIPv6(bare)) return this.#list.check(bare, 'ipv6');
    return false;
  }

  #add(entry: string): void {
    const [address, prefix, extra] = entry.trim().split('/');
    const type = isIPv4(address ?? '') ? 'ipv4' : isIPv6(address ?? '') ? 'ipv6' : undefined;
    if (!type || extra !== undefined) throw new Error(`"${entry}" is not an IP address or a CIDR block such as 10.0.0.0/8 or fd00::/8`);
    if (prefix === undefined) return this.#list.addAddress(address!, type);
    const bits = /^\d{1,3}$/.test(prefix) ? Number(prefix) : NaN;
    const max = type === 'ipv4' ? 32 : 128;
    if (!(bits >= 0 && bits <= max)) throw new Error(`"${entry}" has a prefix length outside 0..${max}`);
    this.#list.addSubnet(address!, bits, type);
  }
}
