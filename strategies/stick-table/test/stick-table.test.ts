import type { Backend } from '@tether/core';
import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { StickTable } from '../src/stick-table.ts';

// Time is driven through the injected clock: `clock.t` is the only time the table ever sees.

const backend = (id: string): Backend => ({ id, host: '127.0.0.1', port: 1, weight: 1, state: 'ready', sendProxy: 'none', maxconn: 0, activeConnections: 0 });
const A = backend('a');
const B = backend('b');

function table(options: { size?: number; expireMs?: number; keyLength?: number } = {}) {
  const clock = { t: 1_000_000 };
  const t = new StickTable({ size: options.size ?? 100, expireMs: options.expireMs ?? 60_000, keyLength: options.keyLength ?? 128, now: () => clock.t });
  return { t, clock };
}

/** A key that was connected and has disconnected: idle, expiring from now. */
function storeIdle(t: StickTable, key: string, b: Backend = A): void {
  expect(t.store(key, b)).toBe(true);
  t.release(key);
}

const keys = (t: StickTable): string[] => t.view('t').entries.map((e) => e.key);

describe('StickTable match / store / release', () => {
  it('misses an unknown key and matches a stored one', () => {
    const { t } = table();
    expect(t.match('dev1')).toBeUndefined();
    expect(t.store('dev1', A)).toBe(true);
    expect(t.match('dev1')).toBe('a');
    expect(t.size).toBe(1);
  });

  it('counts connections using an entry (use) and never below zero', () => {
    const { t } = table();
    t.store('k', A);
    t.store('k', A);
    expect(t.get('k')?.use).toBe(2);
    t.release('k');
    expect(t.get('k')?.use).toBe(1);
    t.release('k');
    t.release('k'); // one release too many must not go negative and pin the entry forever
    expect(t.get('k')?.use).toBe(0);
  });

  it('moves an entry to the backend of the latest store (session moved)', () => {
    const { t } = table();
    t.store('k', A);
    t.store('k', B);
    expect(t.match('k')).toBe('b');
    expect(t.get('k')?.use).toBe(2);
  });

  it('counts a match as a hit (a store is not one; a retry\'s match can say it is not) and records when it was last seen', () => {
    const { t, clock } = table();
    t.store('k', A);
    expect(t.get('k')?.hits).toBe(0);
    clock.t += 5;
    t.match('k');
    t.match('k');
    t.match('k', false);
    const [entry] = t.view('t').entries;
    expect(entry).toMatchObject({ key: 'k', backend: 'a', hits: 2, lastSeen: clock.t, use: 1 });
  });

  it('ignores the release of a key it does not hold', () => {
    const { t } = table();
    t.release('ghost');
    expect(t.size).toBe(0);
    expect(t.get('ghost')).toBeUndefined();
  });

  it('deletes an entry', () => {
    const { t } = table();
    t.store('k', A);
    expect(t.delete('k')).toBe(true);
    expect(t.delete('k')).toBe(false);
    expect(t.match('k')).toBeUndefined();
  });
});

describe('StickTable expiry', () => {
  it('forgets an idle entry expireMs after its release', () => {
    const { t, clock } = table({ expireMs: 1000 });
    storeIdle(t, 'k');
    clock.t += 999;
    expect(t.get('k')).toBeDefined();
    clock.t += 1;
    expect(t.get('k')).toBeUndefined();
    expect(t.match('k')).toBeUndefined();
    expect(t.size).toBe(0); // the lookup removed it
  });

  it('counts expiry from the last touch: a match keeps the entry alive', () => {
    const { t, clock } = table({ expireMs: 1000 });
    storeIdle(t, 'k');
    for (let i = 0; i < 5; i++) {
      clock.t += 900;
      expect(t.match('k')).toBe('a');
    }
    clock.t += 1000;
    expect(t.match('k')).toBeUndefined();
  });

  it('never expires an entry while a connection uses it, and counts from the disconnect', () => {
    const { t, clock } = table({ expireMs: 1000 });
    t.store('k', A);
    clock.t += 1_000_000;
    expect(t.sweep()).toBe(0);
    expect(t.match('k')).toBe('a');
    expect(t.view('t').entries[0]?.expiresInMs).toBe(1000);
    clock.t += 50_000;
    t.release('k');
    clock.t += 999;
    expect(t.get('k')).toBeDefined();
    clock.t += 1;
    expect(t.get('k')).toBeUndefined();
  });

  it('keeps an entry while any of several connections still uses it', () => {
    const { t, clock } = table({ expireMs: 1000 });
    t.store('k', A);
    t.store('k', A);
    t.release('k');
    clock.t += 10_000;
    expect(t.match('k')).toBe('a');
  });

  it('stores afresh over an expired entry, starting its use count at one', () => {
    const { t, clock } = table({ expireMs: 1000 });
    storeIdle(t, 'k', A);
    clock.t += 1000;
    t.store('k', B);
    expect(t.get('k')).toMatchObject({ backend: 'b', use: 1, hits: 0 });
  });
});

describe('StickTable size bound (LRU)', () => {
  it('evicts the least recently used idle entry to make room', () => {
    const { t, clock } = table({ size: 3 });
    for (const key of ['a', 'b', 'c']) {
      storeIdle(t, key);
      clock.t += 1;
    }
    t.match('a'); // a is now the most recently used; b is the oldest
    expect(t.store('d', A)).toBe(true);
    expect(keys(t)).toEqual(['c', 'a', 'd']);
    expect(t.evicted).toBe(1);
    t.release('d');
    expect(t.store('e', A)).toBe(true);
    expect(keys(t)).toEqual(['a', 'd', 'e']);
    expect(t.evicted).toBe(2);
  });

  it('counts a release as a use for LRU order', () => {
    const { t, clock } = table({ size: 2 });
    t.store('a', A); // connected first
    storeIdle(t, 'b');
    clock.t += 1;
    t.release('a'); // ...but disconnected last, so b is the older idle entry
    expect(t.store('c', A)).toBe(true);
    expect(keys(t)).toEqual(['a', 'c']);
  });

  it('skips entries in use when evicting', () => {
    const { t } = table({ size: 2 });
    t.store('busy', A); // oldest, but connected
    storeIdle(t, 'idle');
    expect(t.store('new', A)).toBe(true);
    expect(t.get('busy')).toBeDefined();
    expect(t.get('idle')).toBeUndefined();
  });

  it('refuses a new key when every entry is in use, leaving the table as it was', () => {
    const { t } = table({ size: 2 });
    t.store('x', A);
    t.store('y', B);
    expect(t.store('z', A)).toBe(false);
    expect(keys(t)).toEqual(['x', 'y']);
    expect(t.get('x')?.use).toBe(1);
    expect(t.evicted).toBe(0);
    // A key already in the table needs no room, so it can still be stored when full.
    expect(t.store('x', A)).toBe(true);
    expect(t.get('x')?.use).toBe(2);
  });

  it('accepts a new key once a connection of a full table disconnects', () => {
    const { t } = table({ size: 1 });
    t.store('x', A);
    expect(t.store('z', A)).toBe(false);
    t.release('x');
    expect(t.store('z', A)).toBe(true);
    expect(keys(t)).toEqual(['z']);
  });
});

describe('StickTable key length', () => {
  it.each([
    ['shorter', 'abc', 'abc'],
    ['exactly as long', 'abcd', 'abcd'],
    ['longer (its SHA-256)', 'abcdefgh', `sha256:${createHash('sha256').update('abcdefgh').digest('base64url')}`],
    ['short but shaped like a digest (digested too)', 'sha256:', `sha256:${createHash('sha256').update('sha256:').digest('base64url')}`],
    ['empty', '', ''],
  ])('stores a %s key', (_name, key, expected) => {
    expect(table({ keyLength: 4 }).t.normalize(key)).toBe(expected);
  });

  it('gives keys with the same prefix entries of their own, unlike HAProxy len (no silent sharing)', () => {
    const { t } = table({ keyLength: 8 });
    t.store(t.normalize('device-0001'), A);
    expect(t.match(t.normalize('device-0002'))).toBeUndefined();
    expect(t.match(t.normalize('device-0001'))).toBe('a');
  });

  it('keeps 65,535-character keys apart that differ only in their last character', () => {
    const { t } = table({ keyLength: 128 });
    const long = 'k'.repeat(65_534);
    t.store(t.normalize(`${long}1`), A);
    expect(t.match(t.normalize(`${long}2`))).toBeUndefined();
    expect(t.normalize(`${long}1`)).toHaveLength(50);
  });
});

describe('StickTable sweep', () => {
  it('removes only expired idle entries and says how many', () => {
    const { t, clock } = table({ expireMs: 1000 });
    storeIdle(t, 'old1');
    t.store('busy', A); // old but in use
    storeIdle(t, 'old2');
    clock.t += 1000;
    storeIdle(t, 'fresh');
    expect(t.sweep()).toBe(2);
    expect(keys(t).sort()).toEqual(['busy', 'fresh']);
    expect(t.sweep()).toBe(0);
  });

  it('removes nothing before expiry', () => {
    const { t, clock } = table({ expireMs: 1000 });
    storeIdle(t, 'a');
    storeIdle(t, 'b');
    clock.t += 999;
    expect(t.sweep()).toBe(0);
    expect(t.size).toBe(2);
  });
});

describe('StickTable view', () => {
  it('lists entries oldest first with use, hits and time left, up to a limit', () => {
    const { t, clock } = table({ size: 50, expireMs: 1000 });
    storeIdle(t, 'idle');
    clock.t += 300;
    t.store('busy', B);
    const view = t.view('stick-table');
    expect(view).toMatchObject({ name: 'stick-table', type: 'string', size: 50, used: 2 });
    expect(view.entries).toEqual([
      { key: 'idle', backend: 'a', use: 0, hits: 0, lastSeen: clock.t - 300, expiresInMs: 700 },
      { key: 'busy', backend: 'b', use: 1, hits: 0, lastSeen: clock.t, expiresInMs: 1000 },
    ]);
    expect(t.view('x', { limit: 1 }).entries.map((e) => e.key)).toEqual(['idle']);
    expect(t.view('x', { limit: 1 }).used).toBe(2);
    expect(view.store).toBe('memory');
  });

  it('pages through every entry once with the cursor it returns, and finds one key', () => {
    const { t } = table({ size: 50, expireMs: 1000 });
    for (let i = 0; i < 7; i++) storeIdle(t, `k${i}`);
    t.store('busy', B);
    const seen: string[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < 10; page++) {
      const view = t.view('x', { limit: 3, ...(cursor !== undefined ? { cursor } : {}) });
      seen.push(...view.entries.map((e) => e.key));
      cursor = view.cursor;
      if (cursor === undefined) break;
    }
    expect(seen).toEqual(['k0', 'k1', 'k2', 'k3', 'k4', 'k5', 'k6', 'busy']);
    expect(t.view('x', { key: 'k4' }).entries).toMatchObject([{ key: 'k4', backend: 'a' }]);
    expect(t.view('x', { key: 'nope' }).entries).toEqual([]);
  });
});

describe('StickTable operator edits', () => {
  it('set points a key at a backend without counting a use; an entry in use keeps its use', () => {
    const { t } = table({ size: 50 });
    expect(t.set('new', 'b')).toBe(true);
    expect(t.get('new')).toMatchObject({ backend: 'b', use: 0 });
    t.store('live', A);
    expect(t.set('live', 'b')).toBe(true);
    expect(t.get('live')).toMatchObject({ backend: 'b', use: 1 });
  });

  it('clear removes every entry, or only those of one backend', () => {
    const { t } = table({ size: 50 });
    storeIdle(t, 'x');
    t.store('y', B);
    storeIdle(t, 'z');
    expect(t.clear('a')).toBe(2);
    expect([t.get('x'), t.get('y')?.backend, t.get('z')]).toEqual([undefined, 'b', undefined]);
    expect(t.clear()).toBe(1);
    expect(t.size).toBe(0);
  });

  it('shows an expired entry not yet swept with zero time left', () => {
    const { t, clock } = table({ expireMs: 1000 });
    storeIdle(t, 'k');
    clock.t += 5000;
    expect(t.view('x').entries[0]?.expiresInMs).toBe(0);
  });
});
