import { AggregatorRegistry, Gauge, Registry, type PrometheusContentType } from 'prom-client';
import type { Exposition } from './exposition.ts';
import { processRegistry } from './process-metrics.ts';
import type { MetricsJson } from './tether-metrics.ts';

/**
 * One scrape of a cluster's primary: every worker's metrics (TetherMetrics.json, asked over IPC)
 * and the primary's own process metrics, merged by prom-client's AggregatorRegistry with each
 * metric's aggregator:
 *
 * - counters and histograms are summed: the balancer's totals;
 * - `tether_backend_active_connections`, `tether_backend_state` (how many workers see a backend
 *   in each state) and the process metrics (`process_resident_memory_bytes`,
 *   `process_cpu_seconds_total`, …: the whole process tree, primary included) are summed;
 * - `tether_backend_up` is the minimum (1 only when every worker's checks pass, as
 *   `tether backend list` says `healthy`), `tether_backend_weight`, `tether_table_entries`,
 *   `tether_table_size` and `tether_build_info` the maximum (workers hold copies of one table and
 *   agree on weights once a change has reached them all);
 * - prom-client's own choices stand for its metrics (event-loop lag averaged,
 *   `process_start_time_seconds` left out, `nodejs_version_info` the first).
 *
 * `tether_workers` says how many workers answered, so a sum can be read against it.
 */
export async function clusterExposition(perWorker: readonly MetricsJson[]): Promise<Exposition> {
  const primary = (await processRegistry().getMetricsAsJSON()) as MetricsJson;
  const merged = AggregatorRegistry.aggregate<PrometheusContentType>([...perWorker, primary]);
  const workers = new Registry();
  new Gauge({ name: 'tether_workers', help: 'Worker processes whose metrics this scrape sums.', registers: [workers] }).set(perWorker.length);
  const all = Registry.merge([merged, workers]);
  return { contentType: all.contentType, body: await all.metrics() };
}
