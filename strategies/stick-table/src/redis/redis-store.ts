import type { Logger, StatsScope } from '@tether/core';
import { LogThrottle } from '../log-throttle.ts';
import { describeStore, type RedisStoreSettings } from '../store-options.ts';
import type { TouchRow } from '../touch-batch.ts';
import type { RedisClients } from './connection.ts';
import { withDeadline, type Outcome } from './deadline.ts';
import { channelName, encodeInvalidation, type Invalidation } from './invalidations.ts';

/**
 * The stick table's operations on Redis: one key per entry, `<prefix><key>` → backend name, with
 * Redis's TTL as the table's `expire`. Requests on a connection's path (claim, move, lookup) are
 * bounded by a deadline and never sent when the client is not connected; the background ones
 * (touches, write-backs, views, operator edits) have a longer one. Failures are counted and
 * logged at most once per LOG_EVERY_MS per kind.
 *
 * The key that is exactly `<prefix>` (an empty client id is never a key) holds the epoch: a random
 * id written once by the first instance to find it missing. An instance that reconnects and finds
 * the epoch it saw before knows Redis kept its data; a missing or different epoch says Redis lost
 * it (restarted without persistence, or another server), and the instance writes its cache back.
 */

/** What a claim, a move or a lookup found. */
export type Answer =
  /** This instance's write stands (claim: the key was new; move: the key now holds our backend). */
  | { readonly kind: 'won' }
  /** The key holds this backend (lookup: found; claim or move: another writer was first). */
  | { readonly kind: 'held'; readonly owner: string }
  /** Lookup only: no such key. */
  | { readonly kind: 'missing' }
  /** No answer within the deadline, an error, Redis not connected, or too many requests in flight. */
  | { readonly kind: 'failed' };

export interface PageRow {
  readonly key: string;
  readonly backend: string;
  /** Milliseconds of TTL left; -1 for a key without expiry (set by hand). */
  readonly ttlMs: number;
}

export interface Page {
  readonly rows: readonly PageRow[];
  /** Where the next page starts; absent on the last page. */
  readonly cursor?: string;
}

export interface RedisStoreOptions {
  readonly expireMs: number;
  readonly log: Logger;
  readonly stats: StatsScope;
  readonly now: () => number;
  /** For tests: use the claim script even on a server that takes `SET … NX GET`. */
  readonly claimWith?: 'auto' | 'script';
}

const FAILED: Answer = Object.freeze({ kind: 'failed' });
const WON: Answer = Object.freeze({ kind: 'won' });
const MISSING: Answer = Object.freeze({ kind: 'missing' });
/** A Redis that stalls must not accumulate pending requests without bound: past this, go on without it. */
const MAX_IN_FLIGHT = 10_000;
const LOG_EVERY_MS = 10_000;
/** Keys per SCAN call, and the most SCAN calls one page may take (empty stretches of keyspace). */
const SCAN_COUNT_MIN = 100;
const SCAN_CALLS_PER_PAGE = 100;
/** Background requests sent together (touches, write-backs, reads): one deadline each, the event loop free between. */
const BATCH_CHUNK = 500;

export class RedisStore {
  readonly settings: RedisStoreSettings;
  readonly channel: string;
  readonly #clients: RedisClients;
  readonly #options: RedisStoreOptions;
  readonly #stats: StatsScope;
  readonly #throttle: LogThrottle;
  readonly #backgroundMs: number;
  readonly #epochKey: string;
  readonly #match: string;
  #inFlight = 0;
  /** Whether the server takes `SET key value NX GET PX ms` (Redis 7.0+); found out at each connect. */
  #nxGet = false;

  constructor(clients: RedisClients, settings: RedisStoreSettings, options: RedisStoreOptions) {
    this.#clients = clients;
    this.settings = settings;
    this.#options = options;
    this.#stats = options.stats;
    this.#throttle = new LogThrottle(options.log, LOG_EVERY_MS, options.now);
    this.#backgroundMs = backgroundTimeout(settings.timeoutMs);
    this.#epochKey = settings.prefix;
    this.#match = `${globEscape(settings.prefix)}*`;
    this.channel = channelName(settings.prefix);
  }

  get ready(): boolean {
    return this.#clients.commands.status === 'ready';
  }

  /** `SET … NX GET` when the server takes it, else the claim script (one round trip either way). */
  get claimMode(): 'set-nx-get' | 'script' {
    return this.#nxGet ? 'set-nx-get' : 'script';
  }

  /**
   * Right after each (re)connect: finds out whether the server takes `SET … NX GET`, and reads the
   * epoch (creating it when missing). Returns the epoch found, or null when this call created it.
   * Throws when Redis does not answer.
   */
  async connected(newEpoch: string): Promise<string | null> {
    const { commands } = this.#clients;
    if (this.#options.claimWith !== 'script') {
      const tried = await withDeadline(commands.call('set', this.#epochKey, newEpoch, 'NX', 'GET'), this.#backgroundMs);
      if (tried.ok) {
        this.#nxGet = true;
        return tried.value as string | null;
      }
      if (tried.timedOut || !isSyntaxError(tried.error)) throw tried.error ?? new Error(`no answer within ${this.#backgroundMs} ms`);
    }
    this.#nxGet = false;
    const claimed = await withDeadline(commands.tetherClaim(this.#epochKey, newEpoch, 0), this.#backgroundMs);
    if (!claimed.ok) throw claimed.error ?? new Error(`no answer within ${this.#backgroundMs} ms`);
    return claimed.value;
  }

  /**
   * First writer wins: `key` goes to `backend` unless it is already held, in one round trip.
   * Resolves `won`, `held` (another instance, or an earlier life of this one, was first) or `failed`.
   */
  claim(key: string, backend: string, budgetMs: number): Promise<Answer> {
    const k = this.#key(key);
    const ttl = this.#options.expireMs;
    return this.#onPath(() => (this.#nxGet
      ? (this.#clients.commands.call('set', k, backend, 'NX', 'GET', 'PX', ttl) as Promise<string | null>)
      : this.#clients.commands.tetherClaim(k, backend, ttl)), budgetMs, (owner) => (owner === null ? WON : { kind: 'held', owner }));
  }

  /** The key held `from`, which is not available: move it to `to` unless someone else moved it first. */
  move(key: string, from: string, to: string, budgetMs: number): Promise<Answer> {
    return this.#onPath(() => this.#clients.commands.tetherMove(this.#key(key), from, to, this.#options.expireMs), budgetMs,
      (owner) => (owner === null ? WON : { kind: 'held', owner }));
  }

  /** Reads without claiming (`tether explain`, match-only tables). */
  lookup(key: string, budgetMs: number): Promise<Answer> {
    return this.#onPath(() => this.#clients.commands.get(this.#key(key)), budgetMs, (owner) => (owner === null ? MISSING : { kind: 'held', owner }));
  }

  /**
   * Batched touches: each key's TTL is refreshed to `expire` (`GETEX key PX expire`, which also
   * reads its backend), and a key Redis does not have is written with ours (first writer wins): a
   * learn made while Redis was away is written back. Per row: the backend Redis holds (ours or the
   * winner's), null when ours was written, undefined when the row failed (to be sent again).
   */
  async touch(rows: readonly TouchRow[]): Promise<(string | null | undefined)[]> {
    const ttl = this.#options.expireMs;
    const { commands } = this.#clients;
    const owners: (string | null | undefined)[] = await this.#batch(rows.map(([key]) => () => commands.getex(this.#key(key), 'PX', ttl)), 'touch');
    // Missing keys (rare: expired or lost in Redis, or learned while it was away) are written back.
    const missing: number[] = [];
    owners.forEach((owner, i) => {
      if (owner === null) missing.push(i);
    });
    if (missing.length > 0) {
      const written = await this.writeBack(missing.map((i) => [rows[i]![0], rows[i]![1], ttl] as const));
      missing.forEach((row, j) => {
        owners[row] = written[j];
      });
    }
    return owners;
  }

  /**
   * After Redis lost its data: each cached entry is claimed again with the TTL it has left, first
   * writer wins. Per row: the backend Redis holds when another writer was first, null when ours was
   * written, undefined on failure.
   */
  writeBack(rows: readonly (readonly [key: string, backend: string, ttlMs: number])[]): Promise<(string | null | undefined)[]> {
    // The claim script rather than SET … NX GET: scripts are auto-pipelined, a batch goes out in one write.
    return this.#batch(rows.map(([key, backend, ttl]) => () => this.#clients.commands.tetherClaim(this.#key(key), backend, Math.max(1, ttl))), 'write-back');
  }

  /** Per key: the backend Redis holds, null when it has no such key, undefined on failure. */
  read(keys: readonly string[]): Promise<(string | null | undefined)[]> {
    // GETEX with no option reads like GET, but is auto-pipelined (GET is written at once: connections' lookups).
    return this.#batch(keys.map((key) => () => this.#clients.commands.getex(this.#key(key))), 'read');
  }

  /** One entry with its TTL, for the table view; undefined when there is none. Throws on failure. */
  async entry(key: string): Promise<PageRow | undefined> {
    const k = this.#key(key);
    const { commands } = this.#clients;
    const [backend, ttl] = await this.#background(Promise.all([commands.get(k), commands.pttl(k)]), 'view');
    return backend === null ? undefined : { key, backend, ttlMs: ttl };
  }

  /**
   * A page of the shared table, read with SCAN (never KEYS): at most `limit` entries from
   * `cursor` on. The cursor is `<node>:<scan cursor>:<entries of that scan batch already shown>`;
   * like SCAN itself, an entry that exists for the whole walk is shown at least once, and one
   * added or removed meanwhile may or may not be. Throws on failure.
   */
  async page(limit: number, cursor: string | undefined): Promise<Page> {
    const targets = this.#clients.scanTargets();
    let [node, scan, skip] = parseCursor(cursor);
    const found: string[] = [];
    const count = Math.max(limit, SCAN_COUNT_MIN);
    for (let calls = 0; node < targets.length && found.length < limit; calls++) {
      if (calls >= SCAN_CALLS_PER_PAGE) break;
      const [next, batch] = await this.#background(targets[node]!.scan(scan, 'MATCH', this.#match, 'COUNT', count), 'view');
      const keys = batch.filter((k) => k !== this.#epochKey).slice(skip);
      const room = limit - found.length;
      if (keys.length > room) {
        found.push(...keys.slice(0, room));
        skip += room;
        break;
      }
      found.push(...keys);
      skip = 0;
      if (next === '0') {
        node++;
        scan = '0';
      } else scan = next;
    }
    const rows = await this.#rows(found);
    return node < targets.length ? { rows, cursor: `${node}:${scan}:${skip}` } : { rows };
  }

  /** Operator `set`: the key goes to `backend` whoever held it. Throws on failure. */
  async set(key: string, backend: string): Promise<void> {
    await this.#background(this.#clients.commands.set(this.#key(key), backend, 'PX', this.#options.expireMs), 'set');
  }

  /** Operator `delete`: whether the key existed. Throws on failure. */
  async delete(key: string): Promise<boolean> {
    return (await this.#background(this.#clients.commands.del(this.#key(key)), 'delete')) > 0;
  }

  /** Operator `clear`: deletes every entry, or those on `backend`, walking the keyspace with SCAN. Returns how many. */
  async clear(backend: string | undefined): Promise<number> {
    const { commands } = this.#clients;
    let removed = 0;
    for (const target of this.#clients.scanTargets()) {
      let scan = '0';
      do {
        const [next, batch] = await this.#background(target.scan(scan, 'MATCH', this.#match, 'COUNT', 1000), 'clear');
        const keys = batch.filter((k) => k !== this.#epochKey);
        const counts = await this.#background(Promise.all(keys.map((k) => (backend === undefined ? commands.unlink(k) : commands.tetherDeleteIf(k, backend)))), 'clear');
        for (const n of counts) removed += n;
        scan = next;
      } while (scan !== '0');
    }
    return removed;
  }

  /** Tells every instance's cache. Throws on failure. */
  async publish(message: Invalidation): Promise<void> {
    await this.#background(this.#clients.commands.publish(this.channel, encodeInvalidation(message)), 'publish');
  }

  describe(): string {
    return describeStore(this.settings);
  }

  #key(key: string): string {
    return this.settings.prefix + key;
  }

  async #rows(keys: readonly string[]): Promise<PageRow[]> {
    const { commands } = this.#clients;
    const values = await this.#background(Promise.all(keys.map((k) => Promise.all([commands.getex(k), commands.pttl(k)]))), 'view');
    const rows: PageRow[] = [];
    const cut = this.settings.prefix.length;
    values.forEach(([backend, ttl], i) => {
      // Expired or deleted between SCAN and GET.
      if (backend !== null) rows.push({ key: keys[i]!.slice(cut), backend, ttlMs: ttl });
    });
    return rows;
  }

  /** A request on a connection's path: never waits for a connect, bounded by `budgetMs`, counted when it fails. */
  async #onPath<T>(send: () => Promise<T>, budgetMs: number, answer: (value: T) => Answer): Promise<Answer> {
    if (!this.ready) {
      this.#stats.inc('store_unavailable');
      return FAILED;
    }
    if (this.#inFlight >= MAX_IN_FLIGHT) {
      this.#stats.inc('store_overloaded');
      this.#throttle.warn('overloaded', { store: this.describe(), inFlight: this.#inFlight }, 'stick table store: too many requests waiting on Redis; connections go on without it');
      return FAILED;
    }
    this.#inFlight++;
    let outcome: Outcome<T>;
    try {
      outcome = await withDeadline(send(), budgetMs);
    } catch (error) {
      // send() itself threw (a client that was closed under us).
      outcome = { ok: false, timedOut: false, error };
    } finally {
      this.#inFlight--;
    }
    if (outcome.ok) return answer(outcome.value);
    this.#failed(outcome, budgetMs);
    return FAILED;
  }

  #failed(outcome: Extract<Outcome<unknown>, { ok: false }>, budgetMs: number): void {
    if (outcome.timedOut) {
      this.#stats.inc('store_timeouts');
      this.#throttle.warn('timeout', { store: this.describe(), timeoutMs: budgetMs }, 'stick table store: Redis did not answer in time; connections went on with the rest of the chain');
    } else {
      this.#stats.inc('store_errors');
      this.#throttle.warn('error', { store: this.describe(), err: message(outcome.error) }, 'stick table store: a Redis request failed; connections went on with the rest of the chain');
    }
  }

  /**
   * A background batch, in chunks of BATCH_CHUNK requests sent at once (auto-pipelined), one
   * deadline per chunk; the event loop is free between chunks, so a large flush never holds up
   * connections. Each row's own result, or undefined when it failed (or Redis went away).
   */
  async #batch<T>(sends: readonly (() => Promise<T>)[], what: string): Promise<(T | undefined)[]> {
    const results: (T | undefined)[] = new Array<T | undefined>(sends.length).fill(undefined);
    let failure: string | undefined;
    let timedOut = false;
    for (let start = 0; start < sends.length && this.ready; start += BATCH_CHUNK) {
      const end = Math.min(sends.length, start + BATCH_CHUNK);
      const pending: Promise<void>[] = [];
      for (let i = start; i < end; i++) {
        let sent: Promise<T>;
        try {
          sent = sends[i]!();
        } catch (err) {
          failure ??= message(err);
          continue;
        }
        pending.push(sent.then((value) => void (results[i] = value), (err: unknown) => void (failure ??= message(err))));
      }
      const outcome = await withDeadline(Promise.all(pending), this.#backgroundMs);
      if (!outcome.ok) {
        // Rows that answered meanwhile keep their result; the others are sent again later.
        timedOut = true;
        break;
      }
    }
    if (timedOut || failure !== undefined) {
      this.#stats.inc(timedOut ? 'store_timeouts' : 'store_errors');
      this.#throttle.warn(`background ${what}`, { store: this.describe(), err: timedOut ? `no answer within ${this.#backgroundMs} ms` : failure }, `stick table store: ${what} did not complete; it is retried`);
    }
    return results;
  }

  /** A background request that throws on failure (views and operator edits report it to the operator). */
  async #background<T>(promise: Promise<T>, what: string): Promise<T> {
    const outcome = await withDeadline(promise, this.#backgroundMs);
    if (outcome.ok) return outcome.value;
    throw new Error(`Redis store (${this.describe()}): ${what} failed: ${outcome.timedOut ? `no answer within ${this.#backgroundMs} ms` : message(outcome.error)}`);
  }
}

/** Deadline of requests no connection waits for: ten times the connection's, between 1 s and 10 s. */
export function backgroundTimeout(timeoutMs: number): number {
  return Math.min(10_000, Math.max(1_000, timeoutMs * 10));
}

function parseCursor(cursor: string | undefined): [number, string, number] {
  const m = cursor === undefined ? null : /^(\d+):(\d+):(\d+)$/.exec(cursor);
  return m ? [Number(m[1]), m[2]!, Number(m[3])] : [0, '0', 0];
}

/** SCAN's MATCH is a glob: the prefix must match itself only. */
function globEscape(text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&');
}

function isSyntaxError(err: unknown): boolean {
  return err instanceof Error && /syntax error|not allowed|wrong number of arguments/i.test(err.message);
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
