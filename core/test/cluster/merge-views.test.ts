import { describe, expect, it } from 'vitest';
import { mergeBackends, mergeStats, mergeTables } from '../../src/cluster/merge-views.ts';

const entry = (key: string, backend: string, use: number, hits: number, lastSeen: number, expiresInMs = 1000) => ({ key, backend, use, hits, lastSeen, expiresInMs });

describe('merging the workers\' admin answers', () => {
  it('tables: one entry per key, use and hits summed, backend of the latest copy', () => {
    const w1 = [{ name: 'stick-table', type: 'string' as const, size: 10, used: 2, entries: [entry('a', 'b1', 1, 3, 100, 5000), entry('b', 'b2', 0, 0, 50, 10)] }];
    const w2 = [{ name: 'stick-table', type: 'string' as const, size: 10, used: 2, entries: [entry('a', 'b1', 1, 1, 90, 4000), entry('b', 'b1', 0, 1, 80, 40), entry('c', 'b2', 0, 1, 70)] }];
    const [t] = mergeTables([w1, w2]);
    expect(t!.used).toBe(3);
    expect(t!.entries).toEqual([entry('a', 'b1', 2, 4, 100, 5000), entry('b', 'b1', 0, 1, 80, 40), entry('c', 'b2', 0, 1, 70)]);
    expect(mergeTables([w1, w2], 1)[0]!.entries).toHaveLength(1);
  });

  it('stats: counters summed', () => {
    expect(mergeStats([{ a: 1, b: 2 }, { b: 3, c: 4 }])).toEqual({ a: 1, b: 5, c: 4 });
  });

  it('backends: connections summed, healthy only if healthy everywhere, disagreeing states listed', () => {
    const b = (state: string, healthy: boolean, activeConnections: number) => ({ id: 'x', host: 'h', port: 1, state, healthy, activeConnections });
    expect(mergeBackends([[b('ready', true, 2)], [b('ready', true, 3)]], [1, 2])).toEqual([b('ready', true, 5)]);
    expect(mergeBackends([[b('ready', true, 2)], [b('down', false, 0)]], [1, 4])).toEqual([{ ...b('ready', false, 2), workerStates: { 1: 'ready', 4: 'down' } }]);
  });

  it('backends: disagreeing weights listed per worker, agreeing ones not', () => {
    const b = (weight: number) => ({ id: 'x', host: 'h', port: 1, state: 'ready', healthy: true, activeConnections: 0, weight });
    expect(mergeBackends([[b(3)], [b(3)]], [1, 2])).toEqual([b(3)]);
    expect(mergeBackends([[b(3)], [b(1)]], [1, 5])).toEqual([{ ...b(3), workerWeights: { 1: 3, 5: 1 } }]);
  });
});
