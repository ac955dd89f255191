import { collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import corePackage from '../../package.json' with { type: 'json' };

let registry: Registry | undefined;

/**
 * The process's own metrics: prom-client's default ones (CPU, memory, event loop, GC, handles,
 * `process_*` and `nodejs_*`) and `tether_build_info`. One registry per process, made on first
 * use: the default collectors start observers (GC, event-loop delay) that cannot be stopped, so a
 * process that runs several balancers (tests) must start them once; and they describe the
 * process, not a balancer. Each balancer's scrape adds these to its own metrics.
 */
export function processRegistry(): Registry {
  if (registry) return registry;
  const r = new Registry();
  collectDefaultMetrics({ register: r });
  const build = new Gauge({
    name: 'tether_build_info',
    help: 'Always 1; the labels say which Tether (version of @tether/core) and which Node.js run.',
    labelNames: ['version', 'node'],
    registers: [r],
    // Workers and the primary run the same build: merged, it stays 1.
    aggregator: 'max',
  });
  build.set({ version: corePackage.version, node: process.version }, 1);
  registry = r;
  return r;
}
