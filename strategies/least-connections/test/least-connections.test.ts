import type { Backend } from '@tether/core';
import { describe, expect, it } from 'vitest';
import { LeastConnections } from '../src/least-connections.ts';

// Plain objects stand in for the core's backends: the strategy only reads the Backend interface.
type Mutable = { -readonly [K in keyof Backend]: Backend[K] };
const backend = (id: string, activeConnections = 0, weight = 1): Mutable =>
  ({ id, host: '127.0.0.1', port: 1, weight, state: 'ready', sendProxy: 'none', maxconn: 0, activeConnections });

/** Picks `n` times; when `connect` is set, each pick opens a connection on the chosen backend. */
function tally(picker: LeastConnections, backends: Mutable[], n: number, connect: boolean): Record<string, number> {
  const counts: Record<string, number> = Object.fromEntries(backends.map((b) => [b.id, 0]));
  for (let i = 0; i < n; i++) {
    const chosen = picker.pick(backends) as Mutable;
    counts[chosen.id]!++;
    if (connect) chosen.activeConnections++;
  }
  return counts;
}

describe('LeastConnections.pick', () => {
  it('returns undefined when nothing is offered', () => {
    expect(new LeastConnections().pick([])).toBeUndefined();
  });

  it('returns the only backend offered, whatever its load', () => {
    const only = backend('a', 1000);
    expect(new LeastConnections().pick([only])).toBe(only);
  });

  it.each([
    ['fewest connections', [backend('a', 5), backend('b', 2), backend('c', 9)], 'b'],
    ['fewest per unit of weight', [backend('a', 4, 1), backend('b', 6, 3)], 'b'], // 4 vs 2 per weight
    ['an idle backend over a loaded heavy one', [backend('heavy', 10, 10), backend('idle', 0, 1)], 'idle'],
    ['the lighter load even when it has more connections', [backend('a', 3, 1), backend('b', 5, 2)], 'b'], // 3 vs 2.5
  ])('picks %s', (_name, backends, expected) => {
    const picker = new LeastConnections();
    // Whatever the rotation, a strict minimum always wins.
    for (let i = 0; i < backends.length * 2; i++) expect(picker.pick(backends)?.id).toBe(expected);
  });

  it('rotates ties so N equal backends each get 1/N of the picks', () => {
    const backends = [backend('a'), backend('b'), backend('c'), backend('d')];
    // Nobody connects: every pick is a four-way tie.
    expect(tally(new LeastConnections(), backends, 400, false)).toEqual({ a: 100, b: 100, c: 100, d: 100 });
  });

  it('rotates only among the tied minimum', () => {
    const backends = [backend('a', 1), backend('b', 0), backend('c', 1), backend('d', 0)];
    expect(tally(new LeastConnections(), backends, 100, false)).toEqual({ a: 0, b: 50, c: 0, d: 50 });
  });

  it('fills equal backends evenly as connections open', () => {
    const backends = [backend('a'), backend('b'), backend('c')];
    tally(new LeastConnections(), backends, 300, true);
    expect(backends.map((b) => b.activeConnections)).toEqual([100, 100, 100]);
  });

  it('fills backends in proportion to their weights', () => {
    const backends = [backend('w1', 0, 1), backend('w2', 0, 2), backend('w5', 0, 5)];
    tally(new LeastConnections(), backends, 800, true);
    expect(backends.map((b) => b.activeConnections)).toEqual([100, 200, 500]);
  });

  it('levels an already unbalanced pool before sharing again', () => {
    const backends = [backend('a', 10), backend('b', 0)];
    const counts = tally(new LeastConnections(), backends, 10, true);
    expect(counts).toEqual({ a: 0, b: 10 });
  });

  it('never picks a backend that was not offered', () => {
    const picker = new LeastConnections();
    const all = [backend('a'), backend('b', 0), backend('c', 0)];
    for (let i = 0; i < 20; i++) expect(['b', 'c']).toContain(picker.pick(all.slice(1))?.id);
  });
});
