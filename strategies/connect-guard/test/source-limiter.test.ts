import { describe, expect, it } from 'vitest';
import { SourceLimiter } from '../src/source-limiter.ts';

function limiter(rate: number, burst: number, size = 100) {
  const clock = { t: 0 };
  return { l: new SourceLimiter({ rate, burst, size }, () => clock.t), clock };
}

describe('SourceLimiter', () => {
  it('lets a burst through, then `rate` per second', () => {
    const { l, clock } = limiter(2, 3);
    const first = Array.from({ length: 5 }, () => l.take('10.0.0.1'));
    expect(first).toEqual([true, true, true, false, false]);
    clock.t += 500; // one token back
    expect([l.take('10.0.0.1'), l.take('10.0.0.1')]).toEqual([true, false]);
  });

  it('keeps sources apart', () => {
    const { l } = limiter(1, 1);
    expect([l.take('a'), l.take('a'), l.take('b')]).toEqual([true, false, true]);
  });

  it('drops refilled buckets on sweep, keeps the others', () => {
    const { l, clock } = limiter(1, 2);
    l.take('a');
    l.take('b');
    l.take('b');
    clock.t += 1000; // a is full again, b has one token of two
    expect(l.sweep()).toBe(1);
    expect(l.tracked).toBe(1);
  });

  it('is off with rate 0, and lets unfollowed sources through past `size`', () => {
    const off = limiter(0, 1).l;
    expect(Array.from({ length: 10 }, () => off.take('a')).every(Boolean)).toBe(true);
    const small = limiter(1, 1, 1).l;
    expect([small.take('a'), small.take('a'), small.take('b'), small.take('b')]).toEqual([true, false, true, true]);
  });
});
