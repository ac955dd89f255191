import { describe, expect, it } from 'vitest';
import { Scrape } from '../../../test/harness/prometheus.ts';
import { BackendPool } from '../../src/backend/backend-pool.ts';
import { clusterExposition } from '../../src/metrics/cluster-metrics.ts';
import { TetherMetrics } from '../../src/metrics/tether-metrics.ts';
import { Stats } from '../../src/stats.ts';
import { capturingLogger } from '../fixtures.ts';

/** A worker's balancer metrics: its own pool (as each worker has), a stick table of `used` entries. */
function worker(used: number): { m: TetherMetrics; pool: BackendPool; stats: Stats } {
  const pool = new BackendPool([{ id: 'b1', host: '127.0.0.1', port: 1, weight: 2, state: 'ready', sendProxy: 'none' }]);
  const stats = new Stats();
  const m = new TetherMetrics({ pool, stats, log: capturingLogger().log, tables: async () => [{ name: 'stick-table', type: 'string', size: 100, used, entries: [] }] });
  return { m, pool, stats };
}

describe('clusterExposition', () => {
  it('sums counters and histograms over workers, and merges gauges by what they mean', async () => {
    const w1 = worker(10);
    const w2 = worker(12);
    w1.m.listener('main').accept();
    w1.m.listener('main').sniffed(1);
    for (let i = 0; i < 3; i++) w2.m.listener('main').accept();
    w2.m.listener('main').sniffed(2);
    w1.stats.scope('stick_table').inc('hits', 2);
    w2.stats.scope('stick_table').inc('hits', 5);
    // The workers' checks disagree on b1: one sees it down.
    w2.pool.setHealthy('b1', false);
    const { contentType, body } = await clusterExposition([await w1.m.json(), await w2.m.json()]);
    expect(contentType).toBe('text/plain; version=0.0.4; charset=utf-8');
    const s = new Scrape(body);
    expect(s.value('tether_workers')).toBe(2);
    expect(s.value('tether_connections_accepted_total', { listener: 'main' })).toBe(4);
    expect(s.value('tether_stick_table_hits_total')).toBe(7);
    expect(s.histogram('tether_sniff_duration_seconds', { listener: 'main' })).toEqual({ count: 2, sum: 0.003 });
    // up: only when every worker sees it up; state: how many workers see each state.
    expect(s.value('tether_backend_up', { backend: 'b1' })).toBe(0);
    expect(s.value('tether_backend_state', { backend: 'b1', state: 'ready' })).toBe(1);
    expect(s.value('tether_backend_state', { backend: 'b1', state: 'down' })).toBe(1);
    // Copies of one value: the largest, not a sum.
    expect(s.value('tether_backend_weight', { backend: 'b1' })).toBe(2);
    expect(s.value('tether_table_entries', { table: 'stick-table' })).toBe(12);
    expect(s.value('tether_build_info')).toBe(1);
    // Process metrics: the two workers and this process (the primary's) summed.
    expect(s.value('process_resident_memory_bytes')).toBeGreaterThan(0);
    expect(s.has('process_start_time_seconds')).toBe(false);
  });
});
