import { describe, expect, it } from 'vitest';
import { HoldSet } from '../src/hold-set.ts';

const b = (name: string) => ({ name, address: `${name}:1883` });

describe('HoldSet', () => {
  it('keeps a vanished backend for the hold time, then drops it', () => {
    const set = new HoldSet(1000);
    expect(set.update([b('x'), b('y')], 0)).toBe(true);
    expect(set.update([b('x')], 500)).toBe(false);
    expect(set.held(500)).toEqual(['y']);
    expect(set.current().map((e) => e.name)).toEqual(['x', 'y']);
    expect(set.update([b('x')], 1000)).toBe(true);
    expect(set.current().map((e) => e.name)).toEqual(['x']);
  });

  it('an empty answer keeps everything until the hold time has passed', () => {
    const set = new HoldSet(1000);
    set.update([b('x')], 0);
    expect(set.update([], 999)).toBe(false);
    expect(set.current()).toHaveLength(1);
    expect(set.update([], 1000)).toBe(true);
    expect(set.current()).toHaveLength(0);
  });

  it('the same backends in another order are no change, and the list is sorted by name', () => {
    const set = new HoldSet(0);
    set.update([b('b'), b('a'), b('c')], 0);
    expect(set.update([b('c'), b('b'), b('a')], 1)).toBe(false);
    expect(set.current().map((e) => e.name)).toEqual(['a', 'b', 'c']);
  });

  it('a hold of 0 drops a vanished backend at the next answer', () => {
    const set = new HoldSet(0);
    set.update([b('a'), b('b')], 0);
    expect(set.update([b('a')], 1)).toBe(true);
    expect(set.current().map((e) => e.name)).toEqual(['a']);
  });
});
