import { createServer, type Server, type Socket } from 'node:net';
import { fromEvent, map, merge, mergeMap, type Subscription } from 'rxjs';
import { AdminServer } from './admin/admin-server.ts';
import { localAdminSource } from './admin/admin-source.ts';
import type { BackendPool } from './backend/backend-pool.ts';
import type { HealthChecker } from './backend/health-checker.ts';
import { explain, type ExplainResult } from './explain.ts';
import { MetricsServer } from './metrics/metrics-server.ts';
import { TetherMetrics } from './metrics/tether-metrics.ts';
import { formatHostPort, type HostPort } from './net/address.ts';
import { listen } from './net/listen.ts';
import { ConnectionPipeline, type ListenerRuntime, type PipelineDeps } from './pipeline/connection-pipeline.ts';
import type { StrategyChain } from './pipeline/strategy-chain.ts';
import type { Stats } from './stats.ts';

export interface TetherServerDeps extends Omit<PipelineDeps, 'metrics'> {
  /** Every listener with its transport chain, in config order. */
  readonly listeners: readonly ListenerRuntime[];
  /** Aborted on close, so plugins stop their timers. */
  readonly lifetime: AbortController;
  readonly health?: HealthChecker;
}

/**
 * One balancer: a listener whose accepted sockets flow through the connection pipeline, plus the
 * optional admin API. Several can run in one process (tests do).
 */
export class TetherServer {
  readonly #deps: TetherServerDeps;
  readonly #servers = new Map<string, Server>();
  readonly #bound = new Map<string, HostPort>();
  readonly #clients = new Set<Socket>();
  #admin: AdminServer | undefined;
  /** The balancer's Prometheus metrics, for its whole life; undefined when `metrics.enabled` is false. */
  readonly #metrics: TetherMetrics | undefined;
  #metricsServer: MetricsServer | undefined;
  #metricsAddress: HostPort | undefined;
  #subscription: Subscription | undefined;
  #adminAddress: HostPort | undefined;

  constructor(deps: TetherServerDeps) {
    this.#deps = deps;
    if (deps.config.metrics.enabled) {
      const metrics = new TetherMetrics({ pool: deps.pool, stats: deps.stats, log: deps.log.child({ component: 'metrics' }), tables: () => deps.strategies.tables({ limit: 0 }) });
      deps.health?.observe((id, ok) => metrics.healthCheck(id, ok));
      this.#metrics = metrics;
    }
  }

  get pool(): BackendPool {
    return this.#deps.pool;
  }

  get stats(): Stats {
    return this.#deps.stats;
  }

  get strategies(): StrategyChain {
    return this.#deps.strategies;
  }

  /** The Prometheus metrics; undefined when `metrics.enabled` is false. */
  get metrics(): TetherMetrics | undefined {
    return this.#metrics;
  }

  /** Where the first listener ("main", the plain one, when configured) is bound: the real port when 0 was asked for. */
  get address(): HostPort {
    const first = this.#bound.values().next();
    if (first.done) throw new Error('TetherServer is not started');
    return first.value;
  }

  /** Where each listener is bound, by name. */
  get addresses(): ReadonlyMap<string, HostPort> {
    return this.#bound;
  }

  get adminAddress(): HostPort | undefined {
    return this.#adminAddress;
  }

  /** Where `metrics.listen` is bound, if configured. */
  get metricsAddress(): HostPort | undefined {
    return this.#metricsAddress;
  }

  /**
   * Binds the listeners (and the admin API), then logs the readiness line: `tether listening` by
   * default; a worker of a cluster says `worker listening` and the primary says the former once
   * every worker does.
   */
  async start(options: { readonly announce?: string } = {}): Promise<void> {
    const { config, log } = this.#deps;
    const pipeline = new ConnectionPipeline({ ...this.#deps, metrics: this.#metrics });
    for (const listener of this.#deps.listeners) this.#metrics?.listener(listener.name);
    const accepted = this.#deps.listeners.map((listener) => {
      const server = createServer({ allowHalfOpen: true, noDelay: true });
      this.#servers.set(listener.name, server);
      return fromEvent<Socket>(server, 'connection').pipe(map((socket) => ({ socket, listener })));
    });
    this.#subscription = merge(...accepted)
      .pipe(mergeMap(({ socket, listener }) => {
        this.#track(socket);
        return pipeline.handle(socket, listener);
      }))
      .subscribe({ error: (err: unknown) => log.fatal({ err }, 'connection pipeline ended unexpectedly') });
    try {
      for (const listenerConfig of config.listeners) {
        const server = this.#servers.get(listenerConfig.name)!;
        const option = listenerConfig.name === 'main' ? '--listen (TETHER_LISTEN, config key listen)' : `listeners[name=${listenerConfig.name}].address`;
        await listen(server, listenerConfig.address, option);
        const bound = server.address();
        this.#bound.set(listenerConfig.name, typeof bound === 'object' && bound ? { host: bound.address, port: bound.port } : listenerConfig.address);
      }
      if (config.admin) {
        this.#admin = new AdminServer({ log, source: localAdminSource({ ...this.#deps, metrics: this.#metrics, explain: (bytes) => this.explain(bytes) }) });
        this.#adminAddress = await this.#admin.start(config.admin);
      }
      const metrics = this.#metrics;
      if (config.metrics.listen && metrics) {
        this.#metricsServer = new MetricsServer(() => metrics.exposition(), log);
        this.#metricsAddress = await this.#metricsServer.start(config.metrics.listen);
      }
    } catch (err) {
      await this.close();
      throw err;
    }
    this.#deps.health?.start();
    log.info(this.readiness(), options.announce ?? 'tether listening');
  }

  /** The fields of the readiness line: where it listens, its backends and chains. */
  readiness(): { listen: string; listeners: Record<string, string>; admin: string | undefined; metrics?: string; backends: string[]; key: string[]; select: string[]; sinks: string[] } {
    return {
      listen: formatHostPort(this.address),
      listeners: Object.fromEntries([...this.#bound].map(([name, address]) => [name, formatHostPort(address)])),
      admin: this.#adminAddress && `http://${formatHostPort(this.#adminAddress)}`,
      ...(this.#metricsAddress ? { metrics: `http://${formatHostPort(this.#metricsAddress)}/metrics` } : {}),
      backends: this.#deps.pool.all().map((b) => `${b.id}=${formatHostPort(b)}`),
      key: this.#deps.extractors.map((e) => e.name),
      select: this.#deps.strategies.strategies.map((s) => s.name),
      sinks: this.#deps.sinks.map((s) => s.name),
    };
  }

  explain(bytes: Buffer): Promise<ExplainResult> {
    const { config, extractors, strategies, pool } = this.#deps;
    return explain(bytes, { maxBytes: config.sniff.maxBytes, extractors, strategies, pool });
  }

  /** Stops accepting, closes every client connection (and so its backend side), then the plugins. */
  async close(): Promise<void> {
    this.#deps.lifetime.abort();
    this.#deps.health?.stop();
    const closed = [...this.#servers.values()].map((server) => new Promise<void>((resolve) => server.close(() => resolve())));
    for (const socket of this.#clients) socket.destroy();
    await Promise.all(closed);
    this.#subscription?.unsubscribe();
    await this.#admin?.close();
    await this.#metricsServer?.close();
    await this.#deps.strategies.close();
    for (const listener of this.#deps.listeners) for (const t of listener.transports) await t.product.close?.();
    this.#deps.log.info('tether stopped');
  }

  #track(socket: Socket): void {
    this.#clients.add(socket);
    socket.on('close', this.#untrack);
  }

  /** One function for every socket (no closure per connection): `this` is the closed socket. */
  readonly #untrack = ((clients: Set<Socket>) => function (this: Socket): void {
    clients.delete(this);
  })(this.#clients);
}
