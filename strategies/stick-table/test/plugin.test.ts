import { testConn } from '@tether/core/testing';
import { createLogger, PLUGIN_API_VERSION, Stats, validateOptions, type Backend, type ConnInfo, type Strategy, type TableView } from '@tether/core';
import { afterEach, describe, expect, it, vi } from 'vitest';
import stickTable from '../src/index.ts';
import { storedKey } from '../src/stored-key.ts';

// The plugin as the core uses it: options validated by the plugin's own schema, create() given a
// context with an injectable clock, then select / onSpliced / onClosed per connection.

const backend = (id: string): Backend => ({ id, host: '127.0.0.1', port: 1, weight: 1, state: 'ready', sendProxy: 'none', maxconn: 0, activeConnections: 0 });
const A = backend('a');
const B = backend('b');
const BOTH = [A, B];

let nextId = 1;
function conn(key: string | undefined): ConnInfo {
  return testConn({ id: nextId++, ...(key !== undefined ? { key, keySource: 'client-id' } : {}), connect: { clientId: key ?? '' } });
}

const lifetimes: AbortController[] = [];
afterEach(() => {
  for (const c of lifetimes.splice(0)) c.abort(); // stops the sweep timer of every table made
  vi.useRealTimers();
});

async function make(options: Record<string, unknown> = {}) {
  const clock = { t: 5_000_000 };
  const stats = new Stats();
  const lifetime = new AbortController();
  lifetimes.push(lifetime);
  const ctx = { log: createLogger('silent'), stats: stats.scope('stick_table'), now: () => clock.t, signal: lifetime.signal, backends: [] };
  const strategy: Strategy = await stickTable.create(ctx, validateOptions(stickTable, options) as never);
  const count = (name: string): number => stats.get(`stick_table_${name}`);
  const entries = () => (strategy.table!() as TableView).entries;
  return { strategy, clock, count, entries, lifetime };
}

/** One connection's life as the pipeline drives it: select, then (if connected) splice. */
async function connectVia(strategy: Strategy, c: ConnInfo, offered: readonly Backend[], fallback: Backend) {
  const selection = await strategy.select(c, offered);
  const chosen = selection.kind === 'selected' ? selection.backend : fallback;
  strategy.onSpliced?.(c, chosen);
  return { selection, chosen };
}

describe('stick-table plugin metadata and options', () => {
  it('is a strategy for this API version that may abstain (so it cannot end a chain)', () => {
    expect(stickTable).toMatchObject({ name: 'stick-table', kind: 'strategy', apiVersion: PLUGIN_API_VERSION });
  });

  it('has HAProxy-like defaults', () => {
    expect(validateOptions(stickTable, {})).toEqual({ size: 100_000, expire: '30m', keyLength: 128, mode: 'learn', store: expect.objectContaining({ type: 'memory' }) });
  });

  it.each([
    [{ expire: 'soon' }, /expire: must be a duration/],
    [{ size: -1 }, /size: must be a whole number of entries, at least 1/],
    [{ size: 0 }, /size: must be a whole number of entries, at least 1/],
    [{ mode: 'store-only' }, /mode: must be one of the possible values: \["learn","match-only"\]/],
    [{ length: 10 }, /'length' not declared/],
  ])('rejects %j naming the option', (options, message) => {
    expect(() => validateOptions(stickTable, options)).toThrow(message);
  });

  it('does not answer for the chain as a last resort', async () => {
    const { strategy } = await make();
    expect(strategy.alwaysAnswers).toBeFalsy();
  });
});

describe('stick-table plugin select', () => {
  it('abstains for a keyless connection without counting a miss', async () => {
    const { strategy, count, entries } = await make();
    const c = conn(undefined);
    expect(await strategy.select(c, BOTH)).toEqual({ kind: 'abstain' });
    strategy.onSpliced?.(c, A);
    expect(count('misses')).toBe(0);
    expect(entries()).toEqual([]);
  });

  it('abstains on a miss, learns on splice, then sends the key back to the same backend', async () => {
    const { strategy, count } = await make();
    const first = await connectVia(strategy, conn('dev1'), BOTH, B);
    expect(first.selection.kind).toBe('abstain');
    expect(count('misses')).toBe(1);
    const again = await strategy.select(conn('dev1'), BOTH);
    expect(again).toEqual({ kind: 'selected', backend: B, remembered: true });
    expect(count('hits')).toBe(1);
  });

  it('returns the offered backend object, not a stored copy (the chain checks identity)', async () => {
    const { strategy } = await make();
    await connectVia(strategy, conn('k'), BOTH, A);
    const offered = [backend('b'), backend('a')];
    const selection = await strategy.select(conn('k'), offered);
    expect(selection.kind === 'selected' && selection.backend).toBe(offered[1]);
  });

  it('re-dispatches when the stored backend is not offered, then rewrites the entry to the new backend', async () => {
    const { strategy, count, entries } = await make();
    await connectVia(strategy, conn('dev'), BOTH, A);
    // A is down (or was already tried for this connection): only B is offered.
    const moved = await connectVia(strategy, conn('dev'), [B], B);
    expect(moved.selection).toEqual({ kind: 'abstain' });
    expect(count('redispatches')).toBe(1);
    expect(count('rewrites')).toBe(1);
    expect(entries()).toMatchObject([{ key: 'dev', backend: 'b' }]);
    // A is back, but the session now lives on B.
    expect(await strategy.select(conn('dev'), BOTH)).toEqual({ kind: 'selected', backend: B, remembered: true });
  });

  it('forgets an idle key after expire, counted from its disconnect on the injected clock', async () => {
    const { strategy, clock } = await make({ expire: '10s' });
    const c = conn('k');
    await connectVia(strategy, c, BOTH, A);
    clock.t += 3_600_000; // connected for an hour: never expires in use
    expect((await strategy.select(conn('k'), BOTH)).kind).toBe('selected');
    strategy.onClosed?.(c, A);
    clock.t += 9_999;
    expect((await strategy.select(conn('k'), BOTH)).kind).toBe('selected');
    clock.t += 10_000;
    expect((await strategy.select(conn('k'), BOTH)).kind).toBe('abstain');
  });

  it('stores keys longer than keyLength as digests: keys sharing a prefix keep entries of their own', async () => {
    const { strategy, entries } = await make({ keyLength: 8 });
    await connectVia(strategy, conn('device-0001'), BOTH, B);
    await connectVia(strategy, conn('device-0002'), [A], A);
    expect(await strategy.select(conn('device-0001'), BOTH)).toEqual({ kind: 'selected', backend: B, remembered: true });
    expect(await strategy.select(conn('device-0002'), BOTH)).toEqual({ kind: 'selected', backend: A, remembered: true });
    expect(entries().map((e) => e.key).sort()).toEqual([storedKey('device-0001', 8), storedKey('device-0002', 8)].sort());
    expect(entries()[0]!.key).toMatch(/^sha256:[A-Za-z0-9_-]{43}$/);
  });

  it('refuses keyLength 0 (every key would be a digest) and past 65535', () => {
    for (const keyLength of [0, -1, 1.5, 65_536]) expect(() => validateOptions(stickTable, { keyLength })).toThrow(/keyLength: must be a whole number of characters from 1 to 65535/);
  });
});

describe('stick-table plugin counters count connections, not lookups', () => {
  it('a connection retried after a refused backend is one miss, however many times the chain asks', async () => {
    const { strategy, count } = await make();
    const c = conn('new-device');
    for (const offered of [BOTH, [B], [B]]) expect(await strategy.select(c, offered)).toEqual({ kind: 'abstain' });
    expect(count('misses')).toBe(1);
  });

  it('a reconnect is one hit (in the counter and in its entry); its retry without the entry\'s backend is one redispatch', async () => {
    const { strategy, count, entries } = await make();
    await connectVia(strategy, conn('dev'), BOTH, A);
    const again = conn('dev');
    expect(await strategy.select(again, BOTH)).toEqual({ kind: 'selected', backend: A, remembered: true });
    // A refused the connection: the chain asks again without it, twice.
    expect(await strategy.select(again, [B])).toEqual({ kind: 'abstain' });
    expect(await strategy.select(again, [B])).toEqual({ kind: 'abstain' });
    strategy.onSpliced?.(again, B);
    expect({ hits: count('hits'), misses: count('misses'), redispatches: count('redispatches') }).toEqual({ hits: 1, misses: 1, redispatches: 1 });
    expect(entries()[0]).toMatchObject({ key: 'dev', backend: 'b', hits: 1 });
  });
});

describe('stick-table plugin use counting', () => {
  it('counts each spliced connection and releases it on close', async () => {
    const { strategy, entries } = await make();
    const one = conn('k');
    const two = conn('k');
    await connectVia(strategy, one, BOTH, A);
    await connectVia(strategy, two, BOTH, A);
    expect(entries()[0]?.use).toBe(2);
    strategy.onClosed?.(one, A);
    expect(entries()[0]?.use).toBe(1);
    strategy.onClosed?.(two, A);
    expect(entries()[0]?.use).toBe(0);
  });

  it('refuses to learn when the table is full of connected clients, and then releases nothing for it', async () => {
    const { strategy, count, entries } = await make({ size: 1 });
    await connectVia(strategy, conn('first'), BOTH, A);
    const second = conn('second');
    await connectVia(strategy, second, BOTH, B);
    expect(count('full')).toBe(1);
    expect(entries()).toMatchObject([{ key: 'first', use: 1 }]);
    // Closing the unstored connection must not touch anything else.
    strategy.onClosed?.(second, B);
    expect(entries()).toMatchObject([{ key: 'first', use: 1 }]);
  });

  it('does not count a keyless or never-spliced connection on close', async () => {
    const { strategy, entries } = await make();
    await connectVia(strategy, conn('k'), BOTH, A);
    strategy.onClosed?.(conn('k'), A); // same key, but this connection was never spliced
    strategy.onClosed?.(conn(undefined), A);
    expect(entries()[0]?.use).toBe(1);
  });
});

describe('stick-table plugin match-only mode', () => {
  it('never stores new entries', async () => {
    const { strategy, entries, count } = await make({ mode: 'match-only' });
    for (const key of ['a', 'b', 'c']) {
      const { selection } = await connectVia(strategy, conn(key), BOTH, A);
      expect(selection.kind).toBe('abstain');
    }
    expect(entries()).toEqual([]);
    expect(count('misses')).toBe(3);
    expect(count('full')).toBe(0);
  });
});

describe('stick-table plugin table view and sweeping', () => {
  it('shows its entries under its own name with the configured size and a limit', async () => {
    const { strategy } = await make({ size: 7 });
    await connectVia(strategy, conn('x'), BOTH, A);
    await connectVia(strategy, conn('y'), BOTH, B);
    const view = (strategy.table!(1) as TableView);
    expect(view).toMatchObject({ name: 'stick-table', type: 'string', size: 7, used: 2 });
    expect(view.entries.map((e) => e.key)).toEqual(['x']);
  });

  it('sweeps expired idle entries on a timer (expire/10, at least 1 s) and stops when Tether shuts down', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    const { strategy, clock, lifetime } = await make({ expire: '10s' });
    const idle = conn('idle');
    await connectVia(strategy, idle, BOTH, A);
    strategy.onClosed?.(idle, A);
    await connectVia(strategy, conn('busy'), BOTH, B);
    clock.t += 10_000;
    expect((strategy.table!() as TableView).used).toBe(2); // expired, but nothing looked at it yet
    vi.advanceTimersByTime(999);
    expect((strategy.table!() as TableView).used).toBe(2);
    vi.advanceTimersByTime(1);
    expect((strategy.table!() as TableView).entries.map((e) => e.key)).toEqual(['busy']);
    expect(vi.getTimerCount()).toBe(1);
    lifetime.abort();
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe('stick-table operator edits (tether table set / delete / clear)', () => {
  it('set sends the next connection of the key to the chosen backend as a remembered hit', async () => {
    const { strategy, entries } = await make();
    await connectVia(strategy, conn('dev'), BOTH, A);
    await strategy.setEntry!('dev', B);
    expect(await strategy.select(conn('dev'), BOTH)).toEqual({ kind: 'selected', backend: B, remembered: true });
    await strategy.setEntry!('fresh', A);
    expect(entries().find((e) => e.key === 'fresh')).toMatchObject({ backend: 'a', use: 0 });
  });

  it('set stores the key like a connection would (a digest past keyLength)', async () => {
    const { strategy, entries } = await make({ keyLength: 4 });
    await strategy.setEntry!('device-0001', B);
    expect(entries().map((e) => e.key)).toEqual([storedKey('device-0001', 4)]);
    expect(await strategy.select(conn('device-0001'), BOTH)).toEqual({ kind: 'selected', backend: B, remembered: true });
  });

  it('delete forgets one key (the next connection is a miss); clear forgets all, or one backend\'s', async () => {
    const { strategy, entries } = await make();
    for (const [key, b] of [['x', A], ['y', B], ['z', A]] as const) await connectVia(strategy, conn(key), [b], b);
    expect(await strategy.deleteEntry!('x')).toBe(true);
    expect(await strategy.deleteEntry!('x')).toBe(false);
    expect(await strategy.select(conn('x'), BOTH)).toEqual({ kind: 'abstain' });
    expect(await strategy.clearEntries!('a')).toBe(1);
    expect(entries().map((e) => e.key)).toEqual(['y']);
    expect(await strategy.clearEntries!()).toBe(1);
    expect(entries()).toEqual([]);
  });
});

describe('stick-table across a configuration reload that changes its options (ctx.previous)', () => {
  async function successor(previous: Strategy, options: Record<string, unknown>) {
    const stats = new Stats();
    const lifetime = new AbortController();
    lifetimes.push(lifetime);
    const ctx = { log: createLogger('silent'), stats: stats.scope('stick_table'), now: () => 5_000_000, signal: lifetime.signal, backends: [], previous };
    const strategy: Strategy = await stickTable.create(ctx, validateOptions(stickTable, options) as never);
    return { strategy, entries: () => (strategy.table!() as TableView).entries, lifetime };
  }

  it('keeps every entry, and a connection spliced before the reload releases its entry when it closes after it', async () => {
    const old = await make({ size: 100 });
    const live = conn('live');
    await connectVia(old.strategy, live, [A], A);
    const idle = conn('idle');
    await connectVia(old.strategy, idle, [B], B);
    old.strategy.onClosed!(idle, B);
    const next = await successor(old.strategy, { size: 200 });
    old.lifetime.abort(); // the old product is retired once the new one is in place
    expect(next.entries().map((e) => [e.key, e.backend, e.use])).toEqual([['idle', 'b', 0], ['live', 'a', 1]]);
    expect((next.strategy.table!() as TableView).size).toBe(200);
    expect(await next.strategy.select(conn('idle'), BOTH)).toEqual({ kind: 'selected', backend: B, remembered: true });
    // The old chain is still the one that closes connections it spliced.
    old.strategy.onClosed!(live, A);
    expect(next.entries().find((e) => e.key === 'live')?.use).toBe(0);
  });

  it('a smaller size evicts idle entries, least recently used first; entries in use stay', async () => {
    const old = await make({ size: 10 });
    for (const key of ['k1', 'k2', 'k3']) {
      const c = conn(key);
      await connectVia(old.strategy, c, [A], A);
      old.strategy.onClosed!(c, A);
    }
    await connectVia(old.strategy, conn('busy'), [A], A);
    const next = await successor(old.strategy, { size: 2 });
    expect(next.entries().map((e) => e.key)).toEqual(['k3', 'busy']);
  });

  it('a shorter keyLength stores the keys now too long as digests, so clients keep matching', async () => {
    const old = await make({ keyLength: 20 });
    await connectVia(old.strategy, conn('device-0001-abcdef'), [B], B);
    const next = await successor(old.strategy, { keyLength: 6 });
    expect(next.entries().map((e) => e.key)).toEqual([storedKey('device-0001-abcdef', 6)]);
    // A digest stays a digest through a further change, and still matches.
    const third = await successor(next.strategy, { keyLength: 3 });
    expect(third.entries().map((e) => e.key)).toEqual([storedKey('device-0001-abcdef', 3)]);
    expect(await third.strategy.select(conn('device-0001-abcdef'), BOTH)).toEqual({ kind: 'selected', backend: B, remembered: true });
    expect(await next.strategy.select(conn('device-0001-abcdef'), BOTH)).toEqual({ kind: 'selected', backend: B, remembered: true });
  });
});
