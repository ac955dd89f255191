import { describe, expect, it } from 'vitest';
import { Prng } from '../src/prng.ts';
import { UniformSampler, ZipfSampler } from '../src/zipf.ts';
import { buildWorkload } from '../src/workload.ts';
import { scenario } from './helpers.ts';

describe('Prng', () => {
  it('is a pure function of seed and stream', () => {
    const draw = (seed: number, stream: string) => Array.from({ length: 5 }, ((r) => () => r.nextUint32())(new Prng(seed, stream)));
    expect(draw(1, 'a')).toEqual(draw(1, 'a'));
    expect(draw(1, 'a')).not.toEqual(draw(2, 'a'));
    expect(draw(1, 'a')).not.toEqual(draw(1, 'b'));
  });

  it('is uniform enough: mean and buckets of 100k draws', () => {
    const rng = new Prng(42);
    const buckets = new Array<number>(10).fill(0);
    let sum = 0;
    let min = Infinity;
    let max = -Infinity;
    for (let i = 0; i < 100_000; i++) {
      const v = rng.next();
      min = Math.min(min, v);
      max = Math.max(max, v);
      sum += v;
      buckets[Math.floor(v * 10)]!++;
    }
    expect(min).toBeGreaterThanOrEqual(0);
    expect(max).toBeLessThan(1);
    expect(sum / 100_000).toBeCloseTo(0.5, 2);
    for (const b of buckets) expect(Math.abs(b - 10_000)).toBeLessThan(500);
  });

  it('draws exponential delays with the asked mean', () => {
    const rng = new Prng(5);
    let sum = 0;
    for (let i = 0; i < 50_000; i++) sum += rng.exponential(300);
    expect(sum / 50_000).toBeGreaterThan(290);
    expect(sum / 50_000).toBeLessThan(310);
  });
});

describe('key samplers', () => {
  it('Zipf probabilities follow 1/k^s and sum to 1', () => {
    const z = new ZipfSampler(1_000, 1.2);
    let total = 0;
    for (let i = 0; i < 1_000; i++) total += z.probability(i);
    expect(total).toBeCloseTo(1, 10);
    expect(z.probability(0) / z.probability(1)).toBeCloseTo(2 ** 1.2, 6);
    expect(z.probability(9) / z.probability(99)).toBeCloseTo(10 ** 1.2, 6);
  });

  it('Zipf draws match the probabilities: the hottest key and the tail', () => {
    const z = new ZipfSampler(10_000, 1.1);
    const rng = new Prng(9);
    const n = 200_000;
    const counts = new Map<number, number>();
    for (let i = 0; i < n; i++) {
      const k = z.sample(rng);
      counts.set(k, (counts.get(k) ?? 0) + 1);
    }
    expect(Math.min(...counts.keys())).toBe(0);
    expect(Math.max(...counts.keys())).toBeLessThan(10_000);
    for (const k of [0, 1, 9]) expect((counts.get(k) ?? 0) / n).toBeCloseTo(z.probability(k), 2);
    // Most keys are drawn rarely: the hot few take a large share.
    let top10 = 0;
    for (let k = 0; k < 10; k++) top10 += counts.get(k) ?? 0;
    expect(top10 / n).toBeGreaterThan(0.25);
  });

  it('exponent 0 is uniform', () => {
    const z = new ZipfSampler(4, 0);
    for (let i = 0; i < 4; i++) expect(z.probability(i)).toBeCloseTo(0.25, 12);
  });

  it('uniform draws every key about equally', () => {
    const u = new UniformSampler(5);
    const rng = new Prng(3);
    const counts = new Array<number>(5).fill(0);
    for (let i = 0; i < 50_000; i++) counts[u.sample(rng)]!++;
    for (const c of counts) expect(Math.abs(c - 10_000)).toBeLessThan(500);
  });
});

describe('workload', () => {
  it('has the asked share of persistent clients and drop rate, and is a function of the seed', () => {
    const s = scenario({ clients: { count: 10_000, persistent: 0.3 }, churn: { rate: 2, reconnectDelay: '2m' } });
    const w = buildWorkload(s);
    const persistent = w.persistent.reduce((a, b) => a + b, 0);
    expect(persistent / 10_000).toBeCloseTo(0.3, 1);
    // 10 000 clients × 2 drops per hour × 2 h, none at step 0.
    expect(w.dropClient.length).toBeGreaterThan(39_000);
    expect(w.dropClient.length).toBeLessThan(41_000);
    expect(w.dropStart[1]).toBe(0);
    expect(Math.min(...w.dropDelay)).toBeGreaterThanOrEqual(1);
    const again = buildWorkload(s);
    expect(Buffer.from(again.dropClient.buffer).equals(Buffer.from(w.dropClient.buffer))).toBe(true);
    expect(w.ids[7]).toBe('client-7');
  });

  it('gives user names tenant:client-id when tenants are named', () => {
    const w = buildWorkload(scenario({ clients: { count: 4, tenants: ['acme', 'globex'] } }));
    expect(w.usernames).toEqual(['acme:client-0', 'globex:client-1', 'acme:client-2', 'globex:client-3']);
  });
});
