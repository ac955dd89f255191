import { defineProvider, formatHostPort, parseDuration, PLUGIN_API_VERSION, WEIGHT_MAX, type PluginContext, type ProvidedBackend, type Provider } from '@tether/core';
import { DnsLookup, type Answer, type Found, type RecordType } from './dns-lookup.ts';
import { HoldSet } from './hold-set.ts';
import { durationFormat, positiveDurationFormat, resolversFormat, wholeNumber } from './options.ts';

export interface DnsOptions {
  name: string;
  type: RecordType;
  port: number;
  resolvers: string[];
  interval: string | number;
  minInterval: string | number;
  retry: string | number;
  timeout: string | number;
  tries: number;
  hold: string | number;
  maxRecords: number;
  weight: number;
  namePrefix: string;
  onUnresolved: 'warn' | 'refuse';
}

/** How long start waits for the first resolution (plugin create() has 10 s in all). */
const FIRST_WAIT_MS = 5000;

interface Timing {
  readonly intervalMs: number;
  readonly minIntervalMs: number;
  readonly retryMs: number;
}

/**
 * Backends from DNS, like HAProxy's `server-template … resolvers`: each address of a name (A/AAAA)
 * on `port`, or each SRV record (its target's address, port and weight; the records of the lowest
 * priority are used, those of higher priorities are backups, offered only when none of the lowest
 * can take a client: one backup tier, as HAProxy's `backup` servers). Re-resolved every `interval`, sooner when the records' TTL
 * is shorter (never more often than `minInterval`), and `retry` after a failure. A failure
 * (timeout, SERVFAIL, refused) keeps the last known set; an answer without an address keeps the
 * vanished ones for `hold`. Names come from the record, never its position.
 */
export const dnsProvider = defineProvider<DnsOptions>({
  name: 'dns',
  kind: 'provider',
  apiVersion: PLUGIN_API_VERSION,
  version: '0.1.0',
  description: 'Backends from DNS A/AAAA or SRV records, re-resolved at an interval, with hold times.',
  options: {
    name: {
      doc: 'The name to resolve: a host name (A/AAAA), or an SRV name such as _mqtt._tcp.example.',
      format: (val: unknown) => {
        if (typeof val !== 'string' || !/^[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9])?\.?$/.test(val)) throw new Error('must be a DNS name such as emqx.example or _mqtt._tcp.example');
      },
      default: '',
    },
    type: { doc: 'Records to ask for: A, AAAA, A+AAAA (both), or SRV.', format: ['A', 'AAAA', 'A+AAAA', 'SRV'], default: 'A' },
    port: { doc: 'Port of every address (A/AAAA); SRV records give their own.', format: wholeNumber(0, 65535), default: 0 },
    resolvers: { doc: 'DNS servers to ask, as host:port (tried in order); empty uses the system\'s.', format: resolversFormat, default: [] },
    interval: { doc: 'Time between two resolutions, and the longest a record\'s TTL is trusted.', format: positiveDurationFormat, default: '10s' },
    minInterval: { doc: 'Shortest time between two resolutions, however short the TTL.', format: positiveDurationFormat, default: '1s' },
    retry: { doc: 'Time before the next try after a failed resolution (or a name that does not resolve yet).', format: positiveDurationFormat, default: '2s' },
    timeout: { doc: 'Time one DNS query may take before the next try or server (HAProxy timeout resolve).', format: positiveDurationFormat, default: '2s' },
    tries: { doc: 'Tries per server before a query fails.', format: wholeNumber(1, 10), default: 2 },
    hold: { doc: 'How long a vanished record stays a backend (HAProxy hold obsolete), so a DNS blip or an empty answer does not empty the pool.', format: durationFormat, default: '30s' },
    maxRecords: { doc: 'Most backends taken from one answer; the rest (after sorting) are left out with a warning.', format: wholeNumber(1, 4096), default: 64 },
    weight: { doc: 'Weight of each address of an A/AAAA answer (SRV records carry their own).', format: wholeNumber(1, WEIGHT_MAX), default: 1 },
    namePrefix: { doc: 'Prefix of the backend names; default the queried name and a slash (emqx.example/10.0.0.5:1883).', format: String, default: '' },
    onUnresolved: { doc: 'When the name does not resolve at start: warn (start without its backends and retry) or refuse (start fails).', format: ['warn', 'refuse'], default: 'warn' },
  },
  async create(ctx, options) {
    if (!options.name) throw new Error('options.name is required: the DNS name to resolve');
    if (options.type !== 'SRV' && options.port === 0) throw new Error(`options.port is required for ${options.type} records (SRV records give their own)`);
    const provider = new DnsProvider(ctx, options);
    await provider.first();
    return provider;
  },
});

class DnsProvider implements Provider {
  readonly label: string;
  readonly #ctx: PluginContext;
  readonly #options: DnsOptions;
  readonly #lookup: DnsLookup;
  readonly #hold: HoldSet;
  readonly #timing: Timing;
  readonly #prefix: string;
  #emit: ((backends: readonly ProvidedBackend[]) => void) | undefined;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  /** The last resolution failed: the next failure is not logged again, the next success is. */
  #failing = false;

  constructor(ctx: PluginContext, options: DnsOptions) {
    this.#ctx = ctx;
    this.#options = options;
    this.label = options.type === 'SRV' ? `dns SRV ${options.name}` : `dns ${options.name}:${options.port}`;
    this.#lookup = new DnsLookup(options.resolvers, parseDuration(options.timeout)!, options.tries);
    this.#hold = new HoldSet(parseDuration(options.hold)!);
    this.#timing = { intervalMs: parseDuration(options.interval)!, minIntervalMs: parseDuration(options.minInterval)!, retryMs: parseDuration(options.retry)! };
    this.#prefix = options.namePrefix || `${options.name.replace(/\.$/, '')}/`;
    for (const counter of ['resolutions', 'resolution_failures', 'records_dropped']) ctx.stats.inc(counter, 0);
    ctx.signal.addEventListener('abort', () => this.close(), { once: true });
  }

  /**
   * The resolution at start: its backends are in the pool before the listeners open. It waits at
   * most FIRST_WAIT_MS (slow or unreachable resolvers must not hold the start past the plugin
   * create timeout); a resolution still running then goes on and its backends come when it ends.
   */
  async first(): Promise<void> {
    const pending = this.#resolve();
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), FIRST_WAIT_MS)));
    const delay = await Promise.race([pending, late]).finally(() => clearTimeout(timer));
    if (delay === undefined) {
      if (this.#options.onUnresolved === 'refuse') {
        this.close();
        throw new Error(`${this.label}: no answer from the resolvers within ${FIRST_WAIT_MS} ms at start (onUnresolved: refuse)`);
      }
      this.#ctx.log.warn({ provider: this.label, waitedMs: FIRST_WAIT_MS }, 'DNS resolution still running at start; starting without its backends');
      void pending.then((next) => this.#schedule(this.#hold.current().length === 0 ? this.#timing.retryMs : next));
      return;
    }
    if (this.#hold.current().length === 0) {
      const why = `${this.label} gave no usable record`;
      if (this.#options.onUnresolved === 'refuse') {
        this.close();
        throw new Error(`${why} at start (onUnresolved: refuse)`);
      }
      this.#ctx.log.warn({ provider: this.label, retryMs: this.#timing.retryMs }, `${why} at start; starting without its backends and retrying`);
      return this.#schedule(this.#timing.retryMs);
    }
    this.#schedule(delay);
  }

  start(emit: (backends: readonly ProvidedBackend[]) => void): void {
    this.#emit = emit;
    emit(this.#hold.current());
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#lookup.cancel();
  }

  #schedule(ms: number): void {
    if (this.#closed) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => void this.#tick(), ms);
    this.#timer.unref();
  }

  async #tick(): Promise<void> {
    const delay = await this.#resolve();
    this.#schedule(this.#hold.current().length === 0 ? Math.min(delay, this.#timing.retryMs) : delay);
  }

  /** One resolution; returns when to resolve next. Never throws: a failure keeps the last set. */
  async #resolve(): Promise<number> {
    const { name, type, port } = this.#options;
    let answer: Answer;
    try {
      answer = await this.#lookup.query(type, name, port);
    } catch (err) {
      if (this.#closed) return this.#timing.retryMs;
      this.#ctx.stats.inc('resolution_failures');
      if (!this.#failing) {
        const code = (err as { code?: string }).code ?? (err as Error).message;
        this.#ctx.log.warn({ provider: this.label, code, kept: this.#hold.current().length, retryMs: this.#timing.retryMs }, 'DNS resolution failed; keeping the last known backends');
      }
      this.#failing = true;
      return this.#timing.retryMs;
    }
    if (this.#closed) return this.#timing.intervalMs;
    this.#ctx.stats.inc('resolutions');
    if (this.#failing) this.#ctx.log.info({ provider: this.label, records: answer.found.length }, 'DNS resolution works again');
    this.#failing = false;
    const now = this.#ctx.now();
    if (this.#hold.update(this.#backends(answer.found), now)) this.#emit?.(this.#hold.current());
    return this.#nextDelay(answer.ttl);
  }

  /** A TTL shorter than `interval` brings the next resolution forward, down to `minInterval`. */
  #nextDelay(ttl: number | undefined): number {
    const { intervalMs, minIntervalMs } = this.#timing;
    if (ttl === undefined) return intervalMs;
    return Math.min(intervalMs, Math.max(minIntervalMs, ttl * 1000));
  }

  #backends(found: readonly Found[]): ProvidedBackend[] {
    const usable = [...found];
    // RFC 2782: the lowest priority is used; the others are backups, offered only when none of it can take a client.
    const lowest = this.#options.type === 'SRV' && usable.length > 0 ? Math.min(...usable.map((f) => f.priority ?? 0)) : 0;
    const named = dedupe(usable.map((f) => ({ f, name: `${this.#prefix}${formatHostPort({ host: f.key, port: f.port })}` })));
    // Lowest priority first, so that `maxRecords` never cuts the records in use and keeps backups.
    named.sort((a, b) => (a.f.priority ?? 0) - (b.f.priority ?? 0) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const { maxRecords } = this.#options;
    if (named.length > maxRecords) {
      this.#ctx.stats.inc('records_dropped', named.length - maxRecords);
      this.#ctx.log.warn({ provider: this.label, records: named.length, maxRecords }, 'DNS answer has more records than maxRecords; the rest are left out');
      named.length = maxRecords;
    }
    // Weights are proportions within a tier: the lowest priority's, and the backups'.
    const isBackup = (f: Found): boolean => (f.priority ?? 0) > lowest;
    const scale = [false, true].map((backup) => srvScale(named.filter((n) => isBackup(n.f) === backup).map((n) => n.f.weight ?? 0)));
    return named.map(({ f, name }) => ({
      name,
      address: formatHostPort({ host: f.address, port: f.port }),
      weight: f.record === 'SRV' ? Math.max(1, Math.round((f.weight ?? 0) * scale[Number(isBackup(f))]!)) : this.#options.weight,
      metadata: { record: f.record, ...(f.record === 'SRV' ? { target: f.key, priority: String(f.priority), srvWeight: String(f.weight) } : { address: f.address }) },
      ...(isBackup(f) ? { backup: true } : {}),
    }));
  }
}

/** SRV weights go up to 65535, Tether's to WEIGHT_MAX: scale them down together, keeping their proportions. */
function srvScale(weights: readonly number[]): number {
  const max = Math.max(0, ...weights);
  return max > WEIGHT_MAX ? WEIGHT_MAX / max : 1;
}

function dedupe<T extends { name: string }>(list: readonly T[]): T[] {
  const seen = new Set<string>();
  return list.filter((item) => (seen.has(item.name) ? false : (seen.add(item.name), true)));
}
