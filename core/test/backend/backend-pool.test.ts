import { describe, expect, it } from 'vitest';
import { BackendPool, type BackendDefinition } from '../../src/backend/backend-pool.ts';

const def = (id: string, extra: Partial<BackendDefinition> = {}): BackendDefinition =>
  ({ id, host: '127.0.0.1', port: 1000, weight: 1, state: 'ready', sendProxy: 'none', ...extra });

const ids = (backends: readonly { id: string }[]): string[] => backends.map((b) => b.id);

describe('BackendPool', () => {
  it('keeps every definition, in order, with zero active connections', () => {
    const pool = new BackendPool([def('a', { port: 1, weight: 3, sendProxy: 'v2' }), def('b', { state: 'drain' })]);
    expect(pool.all().map((b) => JSON.parse(JSON.stringify(b)) as unknown)).toEqual([
      { id: 'a', host: '127.0.0.1', port: 1, weight: 3, configWeight: 3, state: 'ready', adminState: 'ready', healthy: true, sendProxy: 'v2', maxconn: 0, activeConnections: 0, source: 'static' },
      { id: 'b', host: '127.0.0.1', port: 1000, weight: 1, configWeight: 1, state: 'drain', adminState: 'drain', healthy: true, sendProxy: 'none', maxconn: 0, activeConnections: 0, source: 'static' },
    ]);
    expect(pool.get('b')?.state).toBe('drain');
    expect(pool.get('zzz')).toBeUndefined();
  });

  it('offers only ready backends', () => {
    const pool = new BackendPool([def('a'), def('b', { state: 'drain' }), def('c', { state: 'maint' }), def('d'), def('e')]);
    pool.setHealthy('d', false);
    expect(pool.get('d')?.state).toBe('down');
    expect(ids(pool.available())).toEqual(['a', 'e']);
  });

  it('offers backups only when no other backend can take the connection: down, drained, full or already tried', () => {
    const pool = new BackendPool([def('a'), def('b', { maxconn: 1 }), def('spare', { backup: true })]);
    expect(ids(pool.available())).toEqual(['a', 'b']);
    pool.setAdminState('a', 'drain');
    expect(ids(pool.available())).toEqual(['b']);
    expect(ids(pool.available(new Set(['b'])))).toEqual(['spare']);
    pool.connectionOpened(pool.get('b')!);
    expect(ids(pool.available())).toEqual(['spare']);
    pool.setHealthy('spare', false);
    expect(ids(pool.available())).toEqual([]);
    expect(pool.explainEmpty()).toBe('every ready backend is at its maxconn limit');
  });

  it('counts the spliced connections whose clients have a session to keep, until each is untracked', () => {
    const pool = new BackendPool([def('a')]);
    const a = pool.get('a')!;
    const persistent = [pool.track(a, () => undefined, true), pool.track(a, () => undefined, true)];
    const clean = pool.track(a, () => undefined);
    expect(JSON.parse(JSON.stringify(a))).toMatchObject({ persistentConnections: 2 });
    persistent[0]!();
    persistent[0]!(); // twice: counted once
    clean();
    expect(JSON.parse(JSON.stringify(a))).toMatchObject({ persistentConnections: 1 });
    persistent[1]!();
    expect(JSON.parse(JSON.stringify(a))).not.toHaveProperty('persistentConnections');
  });

  it('leaves out excluded backends (those already tried for this connection)', () => {
    const pool = new BackendPool([def('a'), def('b'), def('c', { state: 'drain' })]);
    expect(ids(pool.available(new Set(['a'])))).toEqual(['b']);
    expect(ids(pool.available(new Set(['a', 'b'])))).toEqual([]);
    // Excluding a backend that is not ready changes nothing.
    expect(ids(pool.available(new Set(['c'])))).toEqual(['a', 'b']);
  });

  it('returns the same cached array while nothing changes, so selection allocates nothing', () => {
    const pool = new BackendPool([def('a'), def('b')]);
    const first = pool.available();
    expect(pool.available()).toBe(first);
    expect(pool.available(new Set())).toBe(first);
    // Connection counts are live on the same objects; they do not rebuild the array.
    pool.connectionOpened(first[0]!);
    expect(pool.available()).toBe(first);
    // A no-op state change does not rebuild it either.
    expect(pool.setAdminState('a', 'ready')).toBe(false);
    expect(pool.available()).toBe(first);
    expect(Object.isFrozen(first)).toBe(true);
  });

  it('rebuilds the array when a state changes, and only then', () => {
    const pool = new BackendPool([def('a'), def('b')]);
    const before = pool.available();
    expect(pool.setAdminState('a', 'drain')).toBe(true);
    const after = pool.available();
    expect(after).not.toBe(before);
    expect(ids(after)).toEqual(['b']);
    expect(ids(before)).toEqual(['a', 'b']); // the old snapshot is not mutated under a running selection
    expect(pool.setAdminState('a', 'ready')).toBe(true);
    expect(ids(pool.available())).toEqual(['a', 'b']);
  });

  it('reports an unknown backend id in setAdminState as no change', () => {
    const pool = new BackendPool([def('a')]);
    const before = pool.available();
    expect(pool.setAdminState('nope', 'drain')).toBe(false);
    expect(pool.available()).toBe(before);
  });

  it('counts active connections per backend', () => {
    const pool = new BackendPool([def('a'), def('b')]);
    const a = pool.get('a')!;
    pool.connectionOpened(a);
    pool.connectionOpened(a);
    pool.connectionOpened(pool.get('b')!);
    pool.connectionClosed(a);
    expect(pool.get('a')?.activeConnections).toBe(1);
    expect(pool.get('b')?.activeConnections).toBe(1);
  });

  it('counts against its own backend when given a look-alike object with the same id', () => {
    const pool = new BackendPool([def('a')]);
    pool.connectionOpened({ ...pool.get('a')! });
    expect(pool.get('a')?.activeConnections).toBe(1);
  });

  it('throws for a backend it does not know', () => {
    const pool = new BackendPool([def('a')]);
    const stranger = new BackendPool([def('x')]).get('x')!;
    expect(() => pool.connectionOpened(stranger)).toThrow(/unknown backend x/);
  });

  it('works with no backends at all', () => {
    const pool = new BackendPool([]);
    expect(pool.all()).toEqual([]);
    expect(pool.available()).toEqual([]);
  });

  it('sets a weight at runtime on the live backend the strategies hold, remembering the configured one', () => {
    const pool = new BackendPool([def('a', { weight: 2 }), def('b')]);
    const offered = pool.available();
    expect(pool.setWeight('a', 10)).toBe(true);
    // The same object the strategies were given now says 10: no array is rebuilt for a weight.
    expect(offered[0]!.weight).toBe(10);
    expect(pool.available()).toBe(offered);
    expect(JSON.parse(JSON.stringify(pool.get('a')))).toMatchObject({ weight: 10, configWeight: 2 });
    expect(pool.weightSetAtRuntime('a')).toBe(true);
    expect(pool.weightSetAtRuntime('b')).toBe(false);
    expect(pool.setWeight('zzz', 3)).toBe(false);
  });

  it('refuses a weight outside 1..256 or not whole, changing nothing', () => {
    const pool = new BackendPool([def('a', { weight: 2 })]);
    for (const bad of [0, 257, 1.5, -3, Number.NaN]) {
      expect(() => pool.setWeight('a', bad), String(bad)).toThrow(RangeError);
    }
    expect(pool.get('a')?.weight).toBe(2);
  });
});

describe('BackendPool.apply (a configuration reload)', () => {
  it('adds new backends in configuration order, and the array plugins hold sees them', () => {
    const pool = new BackendPool([def('a'), def('c')]);
    const held = pool.all();
    const changes = pool.apply([def('a'), def('b', { port: 2 }), def('c')]);
    expect(changes).toEqual({ added: ['b=127.0.0.1:2'], removed: [], changed: [] });
    expect(ids(held)).toEqual(['a', 'b', 'c']);
    expect(ids(pool.available())).toEqual(['a', 'b', 'c']);
  });

  it('a removed backend is offered to nobody at once; its live connections keep it until the last closes', () => {
    const pool = new BackendPool([def('a'), def('b')]);
    const b = pool.get('b')!;
    pool.connectionOpened(b);
    pool.connectionOpened(b);
    expect(pool.apply([def('a')]).removed).toEqual(['b (2 live connections stay until they close)']);
    expect(ids(pool.all())).toEqual(['a']);
    expect(ids(pool.available())).toEqual(['a']);
    // Connections spliced before the reload still find it (their close is counted on it).
    expect(pool.get('b')).toBe(b);
    pool.connectionClosed(b);
    expect(pool.get('b')?.activeConnections).toBe(1);
    pool.connectionClosed(b);
    expect(pool.get('b')).toBeUndefined();
  });

  it('a backend removed and added back before its last connection closed is the same backend again', () => {
    const pool = new BackendPool([def('a'), def('b')]);
    const b = pool.get('b')!;
    pool.connectionOpened(b);
    pool.apply([def('a')]);
    expect(pool.apply([def('a'), def('b')]).added).toEqual(['b=127.0.0.1:1000 (back before its last connection closed)']);
    expect(pool.get('b')).toBe(b);
    expect(b.activeConnections).toBe(1);
    expect(ids(pool.available())).toEqual(['a', 'b']);
  });

  it('address, PROXY version, maxconn and connect timeout follow the configuration', () => {
    const pool = new BackendPool([def('a', { port: 1, maxconn: 0 })]);
    const changes = pool.apply([def('a', { host: '127.0.0.2', port: 2, sendProxy: 'v2', maxconn: 1, connectTimeoutMs: 300 })]);
    expect(changes.changed).toEqual(['a: host 127.0.0.1 → 127.0.0.2, port 1 → 2, sendProxy none → v2, maxconn 0 → 1, connectTimeoutMs undefined → 300']);
    const a = pool.get('a')!;
    expect([a.host, a.port, a.sendProxy, a.maxconn, pool.connectTimeout(a, 5000)]).toEqual(['127.0.0.2', 2, 'v2', 1, 300]);
    // maxconn now limits what is offered.
    pool.connectionOpened(a);
    expect(pool.available()).toEqual([]);
  });

  it('a state set by the operator stays through a reload that does not change the configured state, and yields to one that does', () => {
    const pool = new BackendPool([def('a'), def('b')]);
    pool.setAdminState('a', 'drain');
    expect(pool.apply([def('a'), def('b')]).changed).toEqual([]);
    expect(pool.get('a')?.state).toBe('drain');
    expect(pool.apply([def('a', { state: 'maint' }), def('b')]).changed).toEqual(['a: state drain → maint']);
    expect(pool.get('a')?.state).toBe('maint');
  });

  it('a weight changed in the configuration is applied; an unchanged one leaves the running weight alone', () => {
    const pool = new BackendPool([def('a', { weight: 2 })]);
    expect(pool.apply([def('a', { weight: 2 })]).changed).toEqual([]);
    expect(pool.apply([def('a', { weight: 5 })]).changed).toEqual(['a: weight 2 → 5']);
    expect(pool.get('a')?.weight).toBe(5);
  });

  it('health verdicts of the backends that stay are kept', () => {
    const pool = new BackendPool([def('a'), def('b')]);
    pool.setHealthy('a', false);
    pool.apply([def('a'), def('b'), def('c')]);
    expect(pool.get('a')?.state).toBe('down');
    expect(ids(pool.available())).toEqual(['b', 'c']);
  });
});
