import { Histogram, Registry, type MetricObjectWithValues, type MetricValue } from 'prom-client';
import type { Logger } from 'pino';
import type { BackendPool } from '../backend/backend-pool.ts';
import { describe } from '../errors.ts';
import { connackReason } from '../mqtt/connack-codes.ts';
import type { BackendState, TableView } from '../plugin.ts';
import type { Stats } from '../stats.ts';
import { BackendMeter } from './backend-meter.ts';
import type { Exposition } from './exposition.ts';
import { ListenerMeter } from './listener-meter.ts';
import { PluginCounters } from './plugin-counters.ts';
import { processRegistry } from './process-metrics.ts';
import { pulledCounter, pulledGauge, type Emit } from './pulled.ts';

type Emitter<L extends string> = (emit: Emit<L>) => void;

/** One worker's (or one process's) metrics as prom-client's getMetricsAsJSON gives them, for the primary to merge. */
export type MetricsJson = MetricObjectWithValues<MetricValue<string>>[];

export interface MetricsDeps {
  readonly pool: BackendPool;
  readonly stats: Stats;
  readonly log: Logger;
  /** The strategies' tables, asked for their size only (`limit: 0`); may be async (a shared store). */
  readonly tables: () => Promise<readonly TableView[]>;
}

interface Scrape {
  readonly tables: readonly (readonly [string, TableView])[];
  readonly bytes: ReadonlyMap<string, { readonly in: number; readonly out: number }>;
}

/** Tables by name; a second table of the same name (two stick tables in one chain) is `name#2`. */
function uniqueNames(views: readonly TableView[]): [string, TableView][] {
  const seen = new Map<string, number>();
  return views.map((view) => {
    const n = (seen.get(view.name) ?? 0) + 1;
    seen.set(view.name, n);
    return [n === 1 ? view.name : `${view.name}#${n}`, view];
  });
}

/** Seconds, from 100 µs (a loopback connect) to the default sniff timeout (5 s). */
const DURATION_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
const STATES: readonly BackendState[] = ['ready', 'drain', 'maint', 'down'];

/**
 * The Prometheus metrics of one balancer, in its own prom-client Registry (several balancers
 * live in one process in tests; the global default registry is never used).
 *
 * The data path does not call prom-client for counters: a prom-client increment builds a label
 * string on every call, even through a bound child, while here each listener and backend has a
 * meter (ListenerMeter, BackendMeter) made on first use and kept by the connection, whose counts
 * are plain number fields; the counters read them when Prometheus scrapes (pulled.ts). Gauges
 * (backend state, weight, table sizes) are read from their owners at scrape time too, so a
 * change made at runtime shows on the next scrape. Only the two histograms are prom-client's own
 * (it has no way to load bucket counts), observed once per connection each through a bound child.
 */
export class TetherMetrics {
  readonly registry = new Registry();
  readonly #deps: MetricsDeps;
  readonly #listeners = new Map<string, ListenerMeter>();
  readonly #backends = new Map<string, BackendMeter>();
  readonly #health = new Map<string, { pass: number; fail: number }>();
  readonly #sniff: Histogram<'listener'>;
  readonly #connect: Histogram<'backend'>;
  readonly #plugins: PluginCounters;
  /** What a scrape reads more than once or asynchronously, read once by `#prepare` before the registry is. */
  #scrape: Scrape = { tables: [], bytes: new Map() };

  constructor(deps: MetricsDeps) {
    this.#deps = deps;
    // The process's collectors (event-loop delay, GC) start with the first balancer, not the first
    // scrape: what they cost is then part of what `tether bench network --metrics on,off` measures.
    processRegistry();
    const registry = this.registry;
    this.#sniff = new Histogram({
      name: 'tether_sniff_duration_seconds',
      help: 'Time from the start of the sniff (after the listener\'s transports, such as a TLS handshake) to a complete CONNECT.',
      labelNames: ['listener'],
      buckets: DURATION_BUCKETS,
      registers: [registry],
    });
    this.#connect = new Histogram({
      name: 'tether_upstream_connect_duration_seconds',
      help: 'Time to open the TCP connection to a backend (sinks such as a TLS handshake not included).',
      labelNames: ['backend'],
      buckets: DURATION_BUCKETS,
      registers: [registry],
    });
    this.#listenerMetrics();
    this.#backendMetrics();
    this.#connackMetrics();
    this.#stateMetrics();
    this.#plugins = new PluginCounters(registry, deps.stats);
  }

  /**
   * The meter of a listener, made on first use; its series exist (at 0) from then on, so a rate
   * over them starts with the listener rather than with its first connection.
   */
  listener(name: string): ListenerMeter {
    let meter = this.#listeners.get(name);
    if (!meter) {
      this.#sniff.zero({ listener: name });
      this.#listeners.set(name, (meter = new ListenerMeter(this.#sniff.labels(name))));
    }
    return meter;
  }

  /** The meter of a backend, made on first use (every backend of the pool has one by the first scrape). */
  backend(id: string): BackendMeter {
    let meter = this.#backends.get(id);
    if (!meter) {
      this.#connect.zero({ backend: id });
      this.#backends.set(id, (meter = new BackendMeter(this.#connect.labels(id))));
    }
    return meter;
  }

  /** One health check of a backend passed or failed. */
  healthCheck(id: string, ok: boolean): void {
    let counts = this.#health.get(id);
    if (!counts) this.#health.set(id, (counts = { pass: 0, fail: 0 }));
    if (ok) counts.pass++;
    else counts.fail++;
  }

  /** The scrape: this balancer's metrics and the process's (processRegistry), as Prometheus text. */
  async exposition(): Promise<Exposition> {
    await this.#prepare();
    const merged = Registry.merge([processRegistry(), this.registry]);
    return { contentType: merged.contentType, body: await merged.metrics() };
  }

  /** The same as JSON, for the primary of a cluster to merge over its workers (cluster-metrics.ts). */
  async json(): Promise<MetricsJson> {
    await this.#prepare();
    return [...(await processRegistry().getMetricsAsJSON()), ...(await this.registry.getMetricsAsJSON())] as MetricsJson;
  }

  /**
   * Reads, once per scrape, what several metrics share or what may take a round trip: the
   * tables' sizes (a shared store answers asynchronously; a failure leaves the table gauges out
   * of this scrape rather than failing it) and the live connections' byte counts (both
   * directions from one walk over the sockets). New plugin counters get their metrics.
   */
  async #prepare(): Promise<void> {
    this.#plugins.sync();
    for (const b of this.#deps.pool.all()) this.backend(b.id);
    const bytes = new Map([...this.#backends].map(([id, m]) => [id, m.bytes()] as const));
    let tables: readonly TableView[] = [];
    try {
      tables = await this.#deps.tables();
    } catch (err) {
      this.#deps.log.warn({ err: describe(err) }, 'metrics: could not read the strategies\' tables; their gauges are left out of this scrape');
    }
    this.#scrape = { tables: uniqueNames(tables), bytes };
  }

  #listenerMetrics(): void {
    const listeners = this.#listeners;
    pulledCounter(this.registry, {
      name: 'tether_connections_accepted_total',
      help: 'Client connections accepted, by listener.',
      labelNames: ['listener'],
      read: (emit) => {
        for (const [listener, m] of listeners) emit({ listener }, m.accepted);
      },
    });
    pulledCounter(this.registry, {
      name: 'tether_connections_rejected_total',
      help: 'Client connections closed before they were spliced to a backend, by listener and reason (the "reason" of the "connection rejected" log line).',
      labelNames: ['listener', 'reason'],
      read: (emit) => {
        for (const [listener, m] of listeners) for (const [reason, n] of m.rejected) emit({ listener, reason }, n);
      },
    });
  }

  #backendMetrics(): void {
    const each = this.#eachBackend;
    pulledCounter(this.registry, {
      name: 'tether_backend_connections_total',
      help: 'Client connections spliced to a backend.',
      labelNames: ['backend'],
      read: each((m) => m.connections),
    });
    pulledGauge(this.registry, {
      name: 'tether_backend_active_connections',
      help: 'Client connections spliced to a backend and still open.',
      labelNames: ['backend'],
      read: each((m) => m.live.size),
    });
    pulledCounter(this.registry, {
      name: 'tether_upstream_connect_failures_total',
      help: 'Failed or timed-out TCP connects to a backend (the connection was then tried on another backend, per retries).',
      labelNames: ['backend'],
      read: each((m) => m.connectFailures),
    });
    pulledCounter(this.registry, {
      name: 'tether_backend_bytes_in_total',
      help: 'Bytes received from clients (requests) on connections spliced to a backend, live connections included.',
      labelNames: ['backend'],
      read: (emit) => {
        for (const [backend, b] of this.#scrape.bytes) emit({ backend }, b.in);
      },
    });
    pulledCounter(this.registry, {
      name: 'tether_backend_bytes_out_total',
      help: 'Bytes sent to clients (responses) on connections spliced to a backend, live connections included.',
      labelNames: ['backend'],
      read: (emit) => {
        for (const [backend, b] of this.#scrape.bytes) emit({ backend }, b.out);
      },
    });
  }

  #connackMetrics(): void {
    const backends = this.#backends;
    const each = this.#eachBackend;
    pulledCounter(this.registry, {
      name: 'tether_connack_refused_total',
      help: 'CONNACKs in which a broker refused the client, by backend and return code (MQTT 3.1.x, 1-5) or reason code (MQTT 5, 128 and above), with the code\'s name.',
      labelNames: ['backend', 'code', 'reason'],
      read: (emit) => {
        for (const [backend, m] of backends) {
          for (const [code, n] of m.refused) emit({ backend, code: String(code), reason: connackReason(code, code >= 0x80 ? 5 : 4) }, n);
        }
      },
    });
    pulledCounter(this.registry, {
      name: 'tether_connack_invalid_total',
      help: 'Connections on which the broker\'s first packet was not a valid CONNACK.',
      labelNames: ['backend'],
      read: each((m) => m.invalidConnacks),
    });
    pulledCounter(this.registry, {
      name: 'tether_stickiness_checks_total',
      help: 'Clients that asked to resume a session, sent to the backend their key remembers, and accepted by it: the CONNACKs that can show a stickiness miss.',
      labelNames: ['backend'],
      read: each((m) => m.stickinessChecks),
    });
    pulledCounter(this.registry, {
      name: 'tether_stickiness_misses_total',
      help: 'Of tether_stickiness_checks_total, the CONNACKs with session present 0: the broker did not have the session (restart, expiry, or a wrong route).',
      labelNames: ['backend'],
      read: each((m) => m.stickinessMisses),
    });
  }

  /** Reads one number of every backend meter, as a `read` of pulled.ts. */
  readonly #eachBackend = (pick: (m: BackendMeter) => number): Emitter<'backend'> => (emit) => {
    for (const [backend, m] of this.#backends) emit({ backend }, pick(m));
  };

  #stateMetrics(): void {
    const { pool } = this.#deps;
    pulledGauge(this.registry, {
      name: 'tether_backend_up',
      help: '1 when a backend passes its health checks (or is not checked), 0 when its checks failed.',
      labelNames: ['backend'],
      aggregator: 'min',
      read: (emit) => {
        for (const b of pool.all()) emit({ backend: b.id }, pool.isHealthy(b.id) ? 1 : 0);
      },
    });
    pulledGauge(this.registry, {
      name: 'tether_backend_state',
      help: 'A backend\'s effective state: 1 for the state it is in (ready, drain, maint, or down when a ready backend fails its checks), 0 for the others.',
      labelNames: ['backend', 'state'],
      read: (emit) => {
        for (const b of pool.all()) for (const state of STATES) emit({ backend: b.id, state }, b.state === state ? 1 : 0);
      },
    });
    pulledGauge(this.registry, {
      name: 'tether_backend_weight',
      help: 'A backend\'s weight, as strategies use it now.',
      labelNames: ['backend'],
      aggregator: 'max',
      read: (emit) => {
        for (const b of pool.all()) emit({ backend: b.id }, b.weight);
      },
    });
    const health = this.#health;
    pulledCounter(this.registry, {
      name: 'tether_health_checks_total',
      help: 'Health checks run against a backend, by result (pass or fail).',
      labelNames: ['backend', 'result'],
      read: (emit) => {
        for (const [backend, c] of health) {
          emit({ backend, result: 'pass' }, c.pass);
          emit({ backend, result: 'fail' }, c.fail);
        }
      },
    });
    pulledGauge(this.registry, {
      name: 'tether_table_entries',
      help: 'Entries in a strategy\'s table (the stick table\'s keys); with workers, the largest of the workers\' copies.',
      labelNames: ['table'],
      aggregator: 'max',
      read: (emit) => {
        for (const [table, view] of this.#scrape.tables) emit({ table }, view.used);
      },
    });
    pulledGauge(this.registry, {
      name: 'tether_table_size',
      help: 'Most entries a strategy\'s table holds (its size option).',
      labelNames: ['table'],
      aggregator: 'max',
      read: (emit) => {
        for (const [table, view] of this.#scrape.tables) emit({ table }, view.size);
      },
    });
  }
}
