import { randomUUID } from 'node:crypto';
import { selected, type Backend, type ConnInfo, type PluginContext, type Selection, type Strategy, type TableEntry, type TableView } from '@tether/core';
import { findOffered, localSelect } from '../local-select.ts';
import { LogThrottle } from '../log-throttle.ts';
import type { RedisStoreSettings } from '../store-options.ts';
import { StickTable } from '../stick-table.ts';
import { announceInterval, TOUCH_FLUSH_MS, TouchBatch, type TouchRow } from '../touch-batch.ts';
import { createClients, type RedisClients } from './connection.ts';
import { decodeInvalidation, type Invalidation } from './invalidations.ts';
import { Reconciler } from './reconciler.ts';
import { backgroundTimeout, RedisStore, type Answer, type PageRow } from './redis-store.ts';

/**
 * The stick table on a Redis store: this process's StickTable is a cache in front of Redis, which
 * every Tether instance (and every worker) shares.
 *
 * - A key in the cache is answered in `select`, synchronously: a warm key costs no round trip.
 * - A key not in the cache: `select` abstains, the rest of the chain proposes a backend (a pure
 *   computation), and `confirm` claims the key for it in ONE round trip (`SET key B NX GET PX
 *   expire`): a null reply means this instance was first and the proposal stands; a backend in
 *   the reply means another instance (or an earlier life of this one) holds the key, and the
 *   connection goes there instead, before anything is connected. When that backend is not
 *   available here, the key is moved to the proposal with a compare-and-set, so two instances
 *   redispatching at once still agree.
 * - The cache learns in `onSpliced` (after the backend accepted), as the memory store does.
 * - Redis's TTL is the table's `expire` plus a slack (a tenth of it, 1 s to 10 min): a connect or
 *   disconnect refreshes it, in batches once a second, unless it was refreshed less than the
 *   slack ago; keys in use are refreshed every third of `expire`. So an entry lives in Redis from
 *   `expire` to `expire` + slack after its last connect or disconnect, never less, and a key that
 *   reconnects often costs one command per slack instead of one per second.
 * - Moves and operator edits are published on `<prefix>invalidations`; every cache applies them.
 * - Redis away or slow: a connection waits at most `store.timeout`, then goes on with the chain's
 *   choice; what it learns is written back (first writer wins) when Redis answers again.
 */

export interface SharedStickTableOptions {
  readonly size: number;
  readonly expireMs: number;
  readonly keyLength: number;
  readonly mode: 'learn' | 'match-only';
  readonly store: RedisStoreSettings;
  /** `conn.attributes` key marking a connection this table counted in an entry's `use`. */
  readonly storedAttribute: string;
  /** For tests: see RedisStoreOptions.claimWith. */
  readonly claimWith?: 'auto' | 'script';
}

/**
 * What `confirm` found in Redis, for `onSpliced` and `onClosed` (conn.attributes): a positive
 * number is the time this instance claimed the key (Redis has it with a full TTL from then).
 */
const KNOWN = -1; // Redis holds the key on the backend the connection goes to
const UNSYNCED = -2; // Redis did not answer: write it back with the next touch
const claimedAt = (sync: unknown): number => (typeof sync === 'number' && sync > 0 ? sync : 0);
const REMEMBERED = Object.freeze({ remembered: true });

/**
 * How much longer than `expire` Redis keeps a key, so that a touch less than this after the last
 * refresh can be skipped without the key expiring early: a tenth of `expire`, 1 s to 10 min.
 */
export function refreshSlack(expireMs: number): number {
  return Math.min(Math.max(Math.floor(expireMs / 10), 1_000), 600_000);
}

/** How long `create` waits for the first connection to Redis before starting without it. */
const FIRST_CONNECT_WAIT_MS = 2_000;
/** At shutdown, the last touches get this long. */
const FINAL_FLUSH_MS = 1_000;
const VIEW_PAGE = 1_000;
/** After a connect whose first request failed, the next try. */
const PROBE_RETRY_MS = 1_000;

let instances = 0;

export async function createSharedStickTable(ctx: PluginContext, options: SharedStickTableOptions): Promise<Strategy> {
  const table = new SharedStickTable(ctx, options);
  await table.start();
  return table.strategy();
}

type Status = 'connecting' | 'connected' | 'unreachable' | 'closed';

class SharedStickTable {
  readonly #ctx: PluginContext;
  readonly #options: SharedStickTableOptions;
  readonly #table: StickTable;
  readonly #clients: RedisClients;
  readonly #store: RedisStore;
  readonly #touches: TouchBatch;
  readonly #slackMs: number;
  readonly #throttle: LogThrottle;
  readonly #sync: string;
  /** Attribute that remembers how this table counted a connection's lookups (local-select.ts). */
  readonly #counted: string;
  readonly #sweeper: NodeJS.Timeout;
  #status: Status = 'connecting';
  #since = 0;
  /** The epoch seen at the last connect (redis-store.ts): the same one next time means Redis kept its data. */
  #epoch: string | undefined;
  #subscriberConnects = 0;
  readonly #reconciler: Reconciler;
  #closing: Promise<void> | undefined;
  #firstSettled: (() => void) | undefined;
  #retry: NodeJS.Timeout | undefined;

  constructor(ctx: PluginContext, options: SharedStickTableOptions) {
    this.#ctx = ctx;
    this.#options = options;
    this.#sync = `stick-table:redis:${++instances}`;
    this.#counted = `${options.storedAttribute}:counted`;
    this.#slackMs = refreshSlack(options.expireMs);
    this.#table = new StickTable({ size: options.size, expireMs: options.expireMs, keyLength: options.keyLength, now: ctx.now });
    this.#sweeper = setInterval(() => this.#table.sweep(), Math.min(Math.max(options.expireMs / 10, 1000), 60_000));
    this.#sweeper.unref();
    this.#throttle = new LogThrottle(ctx.log, 10_000, ctx.now);
    this.#clients = createClients(options.store, backgroundTimeout(options.store.timeoutMs));
    this.#store = new RedisStore(this.#clients, options.store, {
      expireMs: options.expireMs + this.#slackMs, log: ctx.log, stats: ctx.stats, now: ctx.now, ...(options.claimWith ? { claimWith: options.claimWith } : {}),
    });
    this.#touches = new TouchBatch({
      flushMs: TOUCH_FLUSH_MS,
      announceMs: announceInterval(options.expireMs),
      busyEntries: () => this.#table.busyEntries() as TouchRow[],
      flush: (rows) => this.#flushTouches(rows),
      signal: ctx.signal,
    });
    this.#reconciler = new Reconciler({
      table: this.#table,
      store: this.#store,
      touches: this.#touches,
      expireMs: options.expireMs,
      stats: ctx.stats,
      log: ctx.log,
      now: ctx.now,
      closed: () => this.#status === 'closed',
      conflict: (key, owner) => this.#conflict(key, owner),
    });
    ctx.signal.addEventListener('abort', () => void this.close(), { once: true });
  }

  /** Connects both clients; waits for Redis a little (a restart should find it), never fails for its absence. */
  async start(): Promise<void> {
    const { commands, subscriber } = this.#clients;
    commands.on('ready', () => void this.#connected());
    commands.on('close', () => this.#disconnected());
    commands.on('error', (err: Error) => this.#throttle.warn('connection', { store: this.#store.describe(), err: err.message }, 'stick table store: cannot reach Redis; connections go on without it, learns are written back when it returns'));
    subscriber.on('error', () => {
      // The command client reports the same outage; the subscriber reconnects by itself.
    });
    subscriber.on('message', (_channel: string, text: string) => this.#invalidated(text));
    subscriber.on('ready', () => {
      // After a reconnect, invalidations may have been missed: check the cache against Redis.
      if (++this.#subscriberConnects > 1) this.#reconciler.request('revalidate');
    });
    // Resolved by the first connect (once the epoch is read) or the first failure to connect.
    const first = new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, FIRST_CONNECT_WAIT_MS);
      timer.unref();
      this.#firstSettled = () => {
        clearTimeout(timer);
        this.#firstSettled = undefined;
        resolve();
      };
      commands.once('error', () => this.#firstSettled?.());
    });
    commands.connect().catch(() => {
      // Reported through 'error'; the client keeps retrying with backoff.
    });
    subscriber.connect().catch(() => undefined);
    subscriber.subscribe(this.#store.channel).catch((err: unknown) => {
      this.#ctx.log.warn({ store: this.#store.describe(), err: err instanceof Error ? err.message : String(err) }, 'stick table store: could not subscribe to invalidations');
    });
    await first;
    if (this.#status !== 'connected') {
      this.#ctx.log.warn({ store: this.#store.describe() }, 'stick table store: Redis is not reachable at start; starting without it (each connection is decided by the rest of the chain and written back later)');
    }
  }

  strategy(): Strategy {
    return {
      select: (conn, backends) => localSelect(this.#table, this.#ctx.stats, conn, backends, this.#counted),
      confirm: (conn, choice, backends) => this.#confirm(conn, choice, backends),
      onSpliced: (conn, backend) => this.#spliced(conn, backend),
      onClosed: (conn, backend) => this.#closed(conn, backend),
      table: (limit, query) => this.#view(limit, query ?? {}),
      setEntry: (key, backend) => this.#setEntry(key, backend),
      deleteEntry: (key) => this.#deleteEntry(key),
      clearEntries: (backendId) => this.#clearEntries(backendId),
      close: () => this.close(),
    };
  }

  /** The cache did not answer for this key; the rest of the chain chose `choice`. Ask Redis, in one round trip. */
  async #confirm(conn: ConnInfo, choice: Backend, backends: readonly Backend[]): Promise<Selection | undefined> {
    if (!conn.key) return undefined;
    const key = this.#table.normalize(conn.key);
    const deadline = this.#ctx.now() + this.#options.store.timeoutMs;
    const left = (): number => deadline - this.#ctx.now();
    // Reads only: `tether explain` changes nothing; match-only never adds an entry.
    if (conn.dryRun || this.#options.mode === 'match-only') {
      const found = await this.#store.lookup(key, left());
      if (found.kind !== 'held') return undefined;
      const backend = findOffered(found.owner, backends);
      if (!backend) return undefined;
      if (!conn.dryRun) conn.attributes.set(this.#sync, KNOWN);
      return selected(backend, REMEMBERED);
    }
    let answer: Answer = await this.#store.claim(key, choice.id, left());
    if (answer.kind === 'held' && answer.owner !== choice.id && !findOffered(answer.owner, backends)) {
      // The key's backend is not available here (down, draining, refused this connection): move
      // it to the choice, unless another instance moved it meanwhile (then follow that move).
      const from = answer.owner;
      answer = await this.#store.move(key, from, choice.id, left());
      if (answer.kind === 'won') {
        this.#ctx.stats.inc('store_moves');
        this.#publish({ op: 'set', key, backend: choice.id });
      }
    } else if (answer.kind === 'won') this.#ctx.stats.inc('store_claims');
    switch (answer.kind) {
      case 'won':
        conn.attributes.set(this.#sync, this.#ctx.now() || 1);
        return undefined;
      case 'held': {
        const backend = findOffered(answer.owner, backends);
        if (!backend) {
          conn.attributes.set(this.#sync, UNSYNCED);
          return undefined;
        }
        this.#ctx.stats.inc('store_hits');
        conn.attributes.set(this.#sync, KNOWN);
        return selected(backend, REMEMBERED);
      }
      default:
        conn.attributes.set(this.#sync, UNSYNCED);
        return undefined;
    }
  }

  #spliced(conn: ConnInfo, backend: Backend): void {
    if (!conn.key) return;
    const key = this.#table.normalize(conn.key);
    const sync = conn.attributes.get(this.#sync);
    const entry = this.#table.get(key);
    if (this.#options.mode === 'match-only' && entry?.backend !== backend.id && sync !== KNOWN) return;
    if (entry && entry.backend !== backend.id) {
      this.#ctx.stats.inc('rewrites');
      this.#ctx.log.debug({ from: entry.backend, to: backend.id }, 'stick entry moved to another backend');
    }
    if (!this.#table.store(key, backend)) {
      this.#ctx.stats.inc('full');
      return;
    }
    conn.attributes.set(this.#options.storedAttribute, true);
    // A claim just set the key with a full TTL; anything else refreshes it (or writes it back).
    const claimed = claimedAt(sync);
    if (claimed) this.#table.markSynced(key, claimed);
    else if (sync === UNSYNCED) this.#touches.touch(key, backend.id);
    else this.#touch(key, backend.id);
  }

  /** Refreshes the key's TTL with the next batch, unless it was refreshed less than the slack ago. */
  #touch(key: string, backend: string): void {
    const entry = this.#table.get(key);
    if (!entry) return;
    if (entry.syncedAt > 0 && this.#ctx.now() - entry.syncedAt < this.#slackMs) return;
    this.#touches.touch(key, backend);
  }

  #closed(conn: ConnInfo, backend: Backend): void {
    if (!conn.key || !conn.attributes.get(this.#options.storedAttribute)) return;
    const key = this.#table.normalize(conn.key);
    this.#table.release(key);
    // A connection that ends within the slack of its claim or of the last refresh costs nothing:
    // Redis keeps the key at least `expire` from now anyway. (An entry deleted meanwhile, by an
    // operator, is not recreated: #touch needs the entry.)
    this.#touch(key, backend.id);
  }

  /** One batch of touches: refreshed in Redis, or written back; a different backend there wins. */
  async #flushTouches(rows: TouchRow[]): Promise<void> {
    if (!this.#store.ready) {
      this.#touches.requeue(rows);
      return;
    }
    const owners = await this.#store.touch(rows);
    const failed: TouchRow[] = [];
    const now = this.#ctx.now();
    owners.forEach((owner, i) => {
      const [key, backend] = rows[i]!;
      if (owner !== undefined) this.#table.markSynced(key, now);
      if (owner === undefined) failed.push(rows[i]!);
      else if (owner === null) this.#ctx.stats.inc('store_writebacks');
      else if (owner !== backend) this.#conflict(key, owner);
    });
    if (failed.length > 0) this.#touches.requeue(failed);
  }

  /** Redis holds `owner` for a key this cache has on another backend: Redis is the truth. */
  #conflict(key: string, owner: string): void {
    this.#ctx.stats.inc('store_conflicts');
    this.#table.remote(key, owner, { overwrite: true, create: false });
  }

  #invalidated(text: string): void {
    const m = decodeInvalidation(text);
    if (!m) return;
    this.#ctx.stats.inc('store_invalidations');
    switch (m.op) {
      case 'set':
        this.#table.remote(m.key, m.backend, { overwrite: true, create: false });
        return;
      case 'delete':
        this.#table.delete(m.key);
        this.#touches.forget(m.key);
        return;
      case 'clear':
        this.#table.clear(m.backend);
        this.#touches.forgetAll(m.backend);
        return;
    }
  }

  #publish(m: Invalidation): void {
    this.#store.publish(m).catch((err: unknown) => {
      this.#throttle.warn('publish', { store: this.#store.describe(), err: err instanceof Error ? err.message : String(err) }, 'stick table store: an invalidation could not be published; other instances learn the change at their next touch');
    });
  }

  async #connected(): Promise<void> {
    if (this.#status === 'closed') return;
    let epoch: string | null;
    const mine = randomUUID();
    try {
      epoch = await this.#store.connected(mine);
    } catch (err) {
      this.#throttle.warn('connection', { store: this.#store.describe(), err: err instanceof Error ? err.message : String(err) }, 'stick table store: Redis connected but does not answer; trying again');
      this.#firstSettled?.();
      // The connection is up, so no 'ready' will come to try again: ask again in a moment.
      clearTimeout(this.#retry);
      this.#retry = setTimeout(() => {
        if (this.#store.ready) void this.#connected();
      }, PROBE_RETRY_MS);
      this.#retry.unref();
      return;
    }
    const again = this.#epoch !== undefined;
    const kept = epoch !== null && epoch === this.#epoch;
    this.#epoch = epoch ?? mine;
    if (this.#status !== 'connected') {
      this.#status = 'connected';
      this.#since = this.#ctx.now();
      this.#ctx.stats.inc('store_connected');
      if (again) this.#ctx.stats.inc('store_reconnects');
      this.#throttle.reset('connection');
      this.#ctx.log.info({ store: this.#store.describe(), claims: this.#store.claimMode, data: kept ? 'kept' : again ? 'lost: writing this cache back' : 'found' }, again ? 'stick table store reconnected' : 'stick table store connected');
    }
    this.#firstSettled?.();
    // Redis kept its data: only what was missed needs checking. Otherwise write the cache back.
    this.#reconciler.request(kept ? 'revalidate' : 'write-back');
    void this.#touches.flush();
  }

  #disconnected(): void {
    if (this.#status !== 'connected') return;
    this.#status = 'unreachable';
    this.#since = this.#ctx.now();
    this.#ctx.stats.inc('store_connected', -1);
    this.#ctx.log.warn({ store: this.#store.describe() }, 'stick table store: lost the connection to Redis; reconnecting (connections go on without it meanwhile)');
  }

  async #view(limit: number | undefined, query: { readonly cursor?: string; readonly key?: string; readonly limit?: number }): Promise<TableView> {
    const size = this.#options.size;
    const describe = this.#store.describe();
    const local = (why: string): TableView => ({ ...this.#table.view('stick-table', { ...query, ...(limit !== undefined ? { limit } : {}) }), store: `${describe} (${why}: showing this instance's cache)` });
    if (!this.#store.ready) return local(this.#status === 'connecting' ? 'connecting' : `unreachable for ${Math.round((this.#ctx.now() - this.#since) / 1000)} s`);
    let rows: readonly PageRow[];
    let cursor: string | undefined;
    try {
      if (query.key !== undefined) {
        const row = await this.#store.entry(this.#table.normalize(query.key));
        rows = row ? [row] : [];
      } else {
        const page = await this.#store.page(Math.max(1, limit ?? VIEW_PAGE), query.cursor);
        rows = page.rows;
        cursor = page.cursor;
      }
    } catch (err) {
      return local(`not answering (${err instanceof Error ? err.message : String(err)})`);
    }
    const now = this.#ctx.now();
    const entries: TableEntry[] = rows.map((r) => {
      const cached = this.#table.get(r.key);
      const ttl = r.ttlMs < 0 ? this.#options.expireMs : r.ttlMs;
      return { key: r.key, backend: r.backend, use: cached?.use ?? 0, hits: cached?.hits ?? 0, expiresInMs: ttl, lastSeen: now - Math.max(0, this.#options.expireMs - ttl) };
    });
    // size and used describe this instance's cache; the entries are Redis's.
    return { name: 'stick-table', type: 'string', size, used: this.#table.size, entries, store: `${describe} (connected)`, ...(cursor !== undefined ? { cursor } : {}) };
  }

  async #setEntry(key: string, backend: Backend): Promise<void> {
    const k = this.#table.normalize(key);
    this.#requireRedis();
    await this.#store.set(k, backend.id);
    await this.#store.publish({ op: 'set', key: k, backend: backend.id });
    this.#table.set(k, backend.id);
  }

  async #deleteEntry(key: string): Promise<boolean> {
    const k = this.#table.normalize(key);
    this.#requireRedis();
    const existed = await this.#store.delete(k);
    await this.#store.publish({ op: 'delete', key: k });
    this.#table.delete(k);
    this.#touches.forget(k);
    return existed;
  }

  async #clearEntries(backendId: string | undefined): Promise<number> {
    this.#requireRedis();
    const removed = await this.#store.clear(backendId);
    await this.#store.publish({ op: 'clear', backend: backendId });
    this.#table.clear(backendId);
    this.#touches.forgetAll(backendId);
    return removed;
  }

  /** Operator edits change the shared table: refused (and nothing changed) while Redis is away. */
  #requireRedis(): void {
    if (!this.#store.ready) throw new Error(`the Redis store (${this.#store.describe()}) is not reachable now: nothing was changed; try again when it is`);
  }

  /** Stops the timers, gives the last touches a moment, and ends both connections. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      const wasConnected = this.#status === 'connected';
      this.#status = 'closed';
      clearInterval(this.#sweeper);
      clearTimeout(this.#retry);
      this.#touches.stop();
      if (wasConnected) {
        this.#ctx.stats.inc('store_connected', -1);
        await Promise.race([this.#touches.flush(), new Promise<void>((resolve) => setTimeout(resolve, FINAL_FLUSH_MS).unref())]);
      }
      await this.#clients.close();
    })();
    return this.#closing;
  }
}

