import { readdir } from 'node:fs/promises';
import { collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import corePackage from '../../package.json' with { type: 'json' };

let registry: Registry | undefined;

/** prom-client default metrics whose cost grows with the number of open sockets. */
const PER_HANDLE = ['nodejs_active_handles', 'nodejs_active_handles_total', 'nodejs_active_requests', 'nodejs_active_requests_total', 'nodejs_active_resources', 'nodejs_active_resources_total'];

/**
 * The process's own metrics: prom-client's default ones (CPU, memory, heap, event loop, GC, file
 * descriptors: `process_*` and `nodejs_*`, less those that walk every handle) and
 * `tether_build_info`. One registry per process, made on first use: the default collectors start observers (GC, event-loop delay) that cannot be stopped, so a
 * process that runs several balancers (tests) must start them once; and they describe the
 * process, not a balancer. Each balancer's scrape adds these to its own metrics.
 */
export function processRegistry(): Registry {
  if (registry) return registry;
  const r = new Registry();
  collectDefaultMetrics({ register: r });
  // These list every handle (each socket) of the process at each scrape: 35 ms with 3,000 live
  // connections, in which no byte moves. Connections are counted by tether_backend_active_connections.
  for (const name of PER_HANDLE) r.removeSingleMetric(name);
  // prom-client counts open descriptors with a synchronous readdir of /proc/self/fd: 10 ms with
  // 6,000 of them (two per connection), every scrape, with the event loop stopped. The same
  // count, listed off the event loop.
  if (r.getSingleMetric('process_open_fds')) {
    r.removeSingleMetric('process_open_fds');
    new Gauge({
      name: 'process_open_fds',
      help: 'Number of open file descriptors (about two per spliced connection); compare with process_max_fds.',
      registers: [r],
      async collect() {
        this.set(await countOpenFds());
      },
    });
  }
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

/**
 * The entries of /proc/self/fd, listed in the thread pool (prom-client lists them synchronously).
 * Only turning the names into strings runs on the event loop: about 1.4 ms for 6,000.
 */
async function countOpenFds(): Promise<number> {
  // The directory's own descriptor, open while it is listed, is not counted.
  return (await readdir('/proc/self/fd')).length - 1;
}
