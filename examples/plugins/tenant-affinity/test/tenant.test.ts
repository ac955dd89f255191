import type { Backend } from '@tether/core';
import { testBackend } from '@tether/core/testing';
import { describe, expect, it } from 'vitest';
import { hash32, leastLoaded, offeredMembers, rendezvous, tenantOf } from '../src/tenant.ts';

const backend = (id: string, activeConnections = 0, weight = 1): Backend => testBackend(id, { activeConnections, weight });

describe('tenantOf', () => {
  const both = [':', '/'];

  it.each([
    ['acme:device42', 'acme'],
    ['acme/device42', 'acme'],
    // The earliest separator ends the tenant, whichever it is.
    ['acme/line:7', 'acme'],
    ['acme:line/7', 'acme'],
    ['acme:', 'acme'],
  ])('%s → %s', (username, tenant) => {
    expect(tenantOf(username, both)).toBe(tenant);
  });

  it.each([[undefined], [''], ['device42'], [':device42'], ['/device42']])('%j names no tenant', (username) => {
    expect(tenantOf(username, both)).toBeUndefined();
  });

  it('uses only the configured separators, which may be longer than one character', () => {
    expect(tenantOf('acme:device42', ['/'])).toBeUndefined();
    expect(tenantOf('acme::device42', ['::'])).toBe('acme');
    expect(tenantOf('a:b::c', ['::'])).toBe('a:b');
  });
});

describe('offeredMembers', () => {
  it('returns the offered objects of the group, in the group order, skipping names not offered', () => {
    const offered = [backend('b3'), backend('b1'), backend('x')];
    expect(offeredMembers(['b1', 'b2', 'b3'], offered)).toEqual([offered[1], offered[0]]);
    expect(offeredMembers(['b1', 'b2', 'b3'], offered)[0]).toBe(offered[1]);
    expect(offeredMembers(['b2'], offered)).toEqual([]);
  });
});

describe('leastLoaded', () => {
  it('picks the fewest connections per unit of weight', () => {
    const a = backend('a', 4);
    const b = backend('b', 3);
    const c = backend('c', 5, 2); // 2.5 per unit of weight
    expect(leastLoaded([a, b, c])).toBe(c);
    expect(leastLoaded([a, b])).toBe(b);
  });

  it('gives a tie to the backend listed first, and nothing for an empty group', () => {
    const a = backend('a', 2);
    const b = backend('b', 2);
    expect(leastLoaded([a, b])).toBe(a);
    expect(leastLoaded([b, a])).toBe(b);
    expect(leastLoaded([])).toBeUndefined();
  });
});

describe('rendezvous', () => {
  const keys = Array.from({ length: 2000 }, (_, i) => `device-${i}`);

  it('is a pure function of the key and the members: same inputs, same backend, in any order', () => {
    const members = [backend('a'), backend('b'), backend('c')];
    const reversed = [...members].reverse();
    for (const key of keys.slice(0, 200)) {
      const first = rendezvous(key, members)!;
      expect(rendezvous(key, members)).toBe(first);
      expect(rendezvous(key, reversed)!.id).toBe(first.id);
    }
    expect(rendezvous('k', [])).toBeUndefined();
  });

  it('spreads keys over equal members and follows the weights', () => {
    const share = (members: Backend[], id: string): number => keys.filter((k) => rendezvous(k, members)!.id === id).length / keys.length;
    expect(share([backend('a'), backend('b')], 'a')).toBeGreaterThan(0.45);
    expect(share([backend('a'), backend('b')], 'a')).toBeLessThan(0.55);
    expect(share([backend('a', 0, 3), backend('b')], 'a')).toBeGreaterThan(0.7);
    expect(share([backend('a', 0, 3), backend('b')], 'a')).toBeLessThan(0.8);
  });

  it('when a member drops out, only its own keys move', () => {
    const [a, b, c] = [backend('a'), backend('b'), backend('c')];
    let moved = 0;
    for (const key of keys) {
      const before = rendezvous(key, [a, b, c])!;
      const after = rendezvous(key, [a, b])!;
      if (before === c) moved++;
      else expect(after).toBe(before);
    }
    // c owned about a third of the keys; they are the only ones that moved.
    expect(moved / keys.length).toBeGreaterThan(0.28);
    expect(moved / keys.length).toBeLessThan(0.38);
  });

  it('hash32 is a stable 32-bit unsigned hash (the same in every process)', () => {
    expect(hash32('')).toBe(hash32(''));
    expect(hash32('acme')).not.toBe(hash32('acmf'));
    for (const k of keys.slice(0, 50)) {
      const h = hash32(k);
      expect(Number.isInteger(h) && h >= 0 && h < 2 ** 32).toBe(true);
    }
  });
});
