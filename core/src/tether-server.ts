import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { EMPTY, mergeMap, Subject, type Subscription } from 'rxjs';
import { AdminServer } from './admin/admin-server.ts';
import { localAdminSource, type AdminSource } from './admin/admin-source.ts';
import type { BackendPool } from './backend/backend-pool.ts';
import { BackendSources, STATIC_SOURCE } from './backend/backend-sources.ts';
import { checkedFirst, healthCheckerFor, type HealthChecker } from './backend/health-checker.ts';
import type { TetherConfig } from './config/types.ts';
import { ConfigError, describe } from './errors.ts';
import { explain, type ExplainResult } from './explain.ts';
import { MetricsServer } from './metrics/metrics-server.ts';
import { TetherMetrics } from './metrics/tether-metrics.ts';
import { formatHostPort, type HostPort } from './net/address.ts';
import { ListenerSet } from './net/listener-set.ts';
import { planRebind, type Bound, type RebindPlan } from './net/rebind.ts';
import { ConnectionPipeline, type ListenerRuntime } from './pipeline/connection-pipeline.ts';
import type { StrategyChain } from './pipeline/strategy-chain.ts';
import { reloadKept, retire, type PluginInstance } from './plugins/plugin-instances.ts';
import type { LoaderContext } from './plugins/plugin-loader.ts';
import { diffConfig } from './reload/config-changes.ts';
import { buildGeneration, type GenerationParts } from './reload/generation.ts';
import type { ReloadResult, StatusView } from './reload/reload-result.ts';
import type { Stats } from './stats.ts';

/** Where a reload reads the configuration again: the same file, environment and flags as at start. */
export interface ConfigSource {
  /** Loads and validates the configuration; throws ConfigError with every problem. */
  read(): TetherConfig | Promise<TetherConfig>;
  /** The file it reads, if any (shown by `tether status`). */
  readonly file: string | undefined;
}

export interface TetherServerDeps {
  readonly log: Logger;
  readonly stats: Stats;
  readonly pool: BackendPool;
  /** Aborted on close, so plugins stop their timers. */
  readonly lifetime: AbortController;
  /** How plugins are created (registry, clock, peer channels): each reload builds with it. */
  readonly loader: LoaderContext;
  /** The first generation, built by the composition root. */
  readonly generation: GenerationParts;
  readonly source?: ConfigSource;
}

/** One configuration in force: its chains, the pipeline that runs them, and when it was loaded. */
interface Generation extends GenerationParts {
  readonly number: number;
  readonly loadedAt: Date;
  readonly trigger: string;
  readonly pipeline: ConnectionPipeline;
  readonly byName: ReadonlyMap<string, ListenerRuntime>;
}

/** Connection ids run on across generations: a log's `conn` never repeats within a process. */
class ConnectionIds {
  #next = 1;
  next(): number {
    return this.#next++;
  }
}

/**
 * One balancer: listeners whose accepted sockets flow, as one stream, through the connection
 * pipeline of the configuration in force, plus the optional admin API. `reload` swaps the
 * configuration in place; connections keep the generation that accepted them. Several balancers
 * can run in one process (tests do).
 */
export class TetherServer {
  readonly #deps: TetherServerDeps;
  readonly #listeners: ListenerSet;
  readonly #accepted = new Subject<{ socket: Socket; listener: string }>();
  readonly #clients = new Set<Socket>();
  readonly #ids = new ConnectionIds();
  readonly #startedAt = new Date();
  /** Products of replaced generations waiting for their in-flight connections before they are retired. */
  readonly #retiring = new Set<PluginInstance>();
  #generation: Generation;
  #health: HealthChecker;
  #admin: Bound<AdminServer> | undefined;
  /** The balancer's Prometheus metrics, for its whole life; undefined when `metrics.enabled` is false. */
  readonly #metrics: TetherMetrics | undefined;
  #metricsServer: Bound<MetricsServer> | undefined;
  #subscription: Subscription | undefined;
  /** The static backends and the providers' sets, merged into the pool. */
  readonly #sources: BackendSources;
  /** Set by start: from then on a backend a provider adds passes its health checks before it takes clients. */
  #running = false;
  #reloads: Promise<unknown> = Promise.resolve();
  #lastFailure: StatusView['lastFailure'] = null;
  #closed = false;

  constructor(deps: TetherServerDeps) {
    this.#deps = deps;
    const { config } = deps.generation;
    if (config.metrics.enabled) {
      // One for the balancer's whole life: counters run on across reloads.
      this.#metrics = new TetherMetrics({ pool: deps.pool, stats: deps.stats, log: deps.log.child({ component: 'metrics' }), tables: () => this.#generation.strategies.tables({ limit: 0 }) });
    }
    this.#generation = this.#makeGeneration(deps.generation, 1, 'start');
    this.#health = this.#healthChecker(config);
    this.#sources = new BackendSources({
      pool: deps.pool, log: deps.log.child({ component: 'providers' }), stats: deps.stats,
      startDown: (def) => this.#running && def.source !== STATIC_SOURCE && checkedFirst(this.config, def),
      applied: () => this.#health.sync(),
    });
    this.#sources.setStatic(config.backends);
    // What the providers found while they were created is in the pool before the listeners open.
    this.#sources.attach(deps.generation.providers);
    this.#sources.apply();
    this.#listeners = new ListenerSet((socket, listener) => this.#accepted.next({ socket, listener }));
  }

  get pool(): BackendPool {
    return this.#deps.pool;
  }

  get stats(): Stats {
    return this.#deps.stats;
  }

  /** The strategy chain of the configuration in force. */
  get strategies(): StrategyChain {
    return this.#generation.strategies;
  }

  get config(): TetherConfig {
    return this.#generation.config;
  }

  get generation(): number {
    return this.#generation.number;
  }

  /** The Prometheus metrics; undefined when `metrics.enabled` is false. */
  get metrics(): TetherMetrics | undefined {
    return this.#metrics;
  }

  /** Where the first listener ("main", the plain one, when configured) is bound: the real port when 0 was asked for. */
  get address(): HostPort {
    const first = this.addresses.values().next();
    if (first.done) throw new Error('TetherServer is not started');
    return first.value;
  }

  /** Where each listener is bound, by name. */
  get addresses(): ReadonlyMap<string, HostPort> {
    return this.#listeners.addresses;
  }

  get adminAddress(): HostPort | undefined {
    return this.#admin?.address;
  }

  /** Where `metrics.listen` is bound, if configured. */
  get metricsAddress(): HostPort | undefined {
    return this.#metricsServer?.address;
  }

  /**
   * Binds the listeners (and the admin API), then logs the readiness line: `tether listening` by
   * default; a worker of a cluster says `worker listening` and the primary says the former once
   * every worker does.
   */
  async start(options: { readonly announce?: string } = {}): Promise<void> {
    const { log } = this.#deps;
    this.#subscription = this.#accepted
      .pipe(mergeMap(({ socket, listener }) => this.#handle(socket, listener)))
      .subscribe({ error: (err: unknown) => log.fatal({ err }, 'connection pipeline ended unexpectedly') });
    try {
      (await this.#listeners.prepare(this.config.listeners)).commit();
      (await this.#prepareAdmin(this.config)).commit();
      (await this.#prepareMetrics(this.config)).commit();
    } catch (err) {
      await this.close();
      throw err;
    }
    this.#running = true;
    this.#health.start();
    log.info(this.readiness(), options.announce ?? 'tether listening');
  }

  /** The fields of the readiness line: where it listens, its backends and chains. */
  readiness(): { listen: string; listeners: Record<string, string>; admin: string | undefined; metrics?: string; backends: string[]; key: string[]; select: string[]; sinks: string[] } {
    const { extractors, strategies, sinks } = this.#generation;
    return {
      listen: formatHostPort(this.address),
      listeners: Object.fromEntries([...this.addresses].map(([name, address]) => [name, formatHostPort(address)])),
      admin: this.#admin && `http://${formatHostPort(this.#admin.address)}`,
      ...(this.#metricsServer ? { metrics: `http://${formatHostPort(this.#metricsServer.address)}/metrics` } : {}),
      backends: this.#deps.pool.all().map((b) => `${b.id}=${formatHostPort(b)}`),
      key: extractors.map((e) => e.name),
      select: strategies.strategies.map((s) => s.name),
      sinks: sinks.map((s) => s.name),
    };
  }

  explain(bytes: Buffer): Promise<ExplainResult> {
    const { config, extractors, strategies } = this.#generation;
    // An opening is read with the first WebSocket listener's options (its path, subprotocols).
    const websocket = config.listeners.find((l) => l.websocket !== undefined)?.websocket;
    return explain(bytes, { maxBytes: config.sniff.maxBytes, strict: config.sniff.strict, extractors, strategies, pool: this.#deps.pool, websocket });
  }

  /**
   * Reads the configuration again (or takes `config`) and applies it in place as the next
   * generation. Invalid: nothing changes, and every error is in the result. Valid: backends,
   * weights, health checks, chains, sinks, timeouts and listeners change at once for new
   * connections; spliced connections go on untouched, connections still being sniffed finish
   * under the generation that accepted them. Reloads run one at a time.
   */
  reload(trigger = 'admin', config?: TetherConfig): Promise<ReloadResult> {
    const run = this.#reloads.then(() => this.#reload(trigger, config));
    this.#reloads = run.catch(() => undefined);
    return run;
  }

  status(): StatusView {
    const g = this.#generation;
    return {
      generation: g.number,
      loadedAt: g.loadedAt.toISOString(),
      file: this.#deps.source?.file ?? null,
      trigger: g.trigger,
      lastFailure: this.#lastFailure,
      pid: process.pid,
      startedAt: this.#startedAt.toISOString(),
      uptimeSeconds: Math.round((Date.now() - this.#startedAt.getTime()) / 1000),
      node: process.version,
    };
  }

  /** Stops accepting, closes every client connection (and so its backend side), then the plugins. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#deps.lifetime.abort();
    this.#health.stop();
    const closed = this.#listeners.close();
    for (const socket of this.#clients) socket.destroy();
    await closed;
    this.#subscription?.unsubscribe();
    await this.#admin?.server.close();
    await this.#metricsServer?.server.close();
    await retire([...this.#generation.instances, ...this.#retiring], this.#deps.log, this.#deps.loader.releasePeers);
    this.#retiring.clear();
    this.#deps.log.info('tether stopped');
  }

  #handle(socket: Socket, name: string) {
    this.#clients.add(socket);
    socket.on('close', this.#untrack);
    const generation = this.#generation;
    const listener = generation.byName.get(name);
    // A listener the running configuration no longer has (accepted while a reload closed it).
    if (!listener) {
      socket.destroy();
      return EMPTY;
    }
    return generation.pipeline.handle(socket, listener);
  }

  #makeGeneration(parts: GenerationParts, number: number, trigger: string): Generation {
    const { log, stats, pool } = this.#deps;
    const pipeline = new ConnectionPipeline({ ...parts, log, stats, pool, ids: this.#ids, metrics: this.#metrics });
    // Every listener has its series from the first scrape on (rates start at its first connection).
    for (const listener of parts.listeners) this.#metrics?.listener(listener.name);
    return { ...parts, number, trigger, loadedAt: new Date(), pipeline, byName: new Map(parts.listeners.map((l) => [l.name, l])) };
  }

  async #reload(trigger: string, given: TetherConfig | undefined): Promise<ReloadResult> {
    const old = this.#generation;
    if (this.#closed) return this.#failed(trigger, ['the balancer is stopping']);
    let config: TetherConfig;
    try {
      if (given) config = given;
      else if (this.#deps.source) config = await this.#deps.source.read();
      else throw new ConfigError('no configuration source to reload from');
    } catch (err) {
      return this.#failed(trigger, errorLines(err));
    }
    let built;
    try {
      built = await buildGeneration(config, this.#deps.loader, old.instances);
    } catch (err) {
      return this.#failed(trigger, errorLines(err));
    }
    // Every socket the new configuration needs is bound before anything is closed; any failure unbinds them all.
    const plans: { commit(): string[]; rollback(): Promise<void> }[] = [];
    try {
      plans.push(await this.#listeners.prepare(config.listeners));
      plans.push(await this.#prepareAdmin(config));
      plans.push(await this.#prepareMetrics(config));
    } catch (err) {
      await Promise.all(plans.map((p) => p.rollback()));
      await retire(built.created, this.#deps.log, this.#deps.loader.releasePeers);
      return this.#failed(trigger, errorLines(err));
    }
    // Stopped while the reload was being prepared: what it made goes, nothing is swapped in.
    if (this.#closed) {
      await Promise.all(plans.map((p) => p.rollback()));
      await retire(built.created, this.#deps.log, this.#deps.loader.releasePeers);
      return this.#failed(trigger, ['the balancer is stopping']);
    }
    // From here on nothing can fail: the new generation goes in as one.
    const diff = diffConfig(old.config, config);
    // What only a restart applies keeps its running value, so the next reload still reports it.
    config = { ...config, workers: old.config.workers, cluster: old.config.cluster, embedded: old.config.embedded, metrics: { ...config.metrics, enabled: old.config.metrics.enabled } };
    this.#generation = this.#makeGeneration({ ...built.parts, config }, old.number + 1, trigger);
    // The same path as a provider's change: static list and providers merged, then applied.
    this.#sources.setStatic(config.backends);
    this.#sources.attach(built.parts.providers);
    const pool = this.#sources.apply();
    const changes = [
      ...diff.changes,
      ...plans.flatMap((p) => p.commit()),
      ...pool.added.map((b) => `backend added: ${b}`),
      ...pool.removed.map((b) => `backend removed: ${b}`),
      ...pool.changed.map((b) => `backend changed: ${b}`),
    ];
    this.#health.stop();
    this.#health = this.#healthChecker(config);
    this.#health.start();
    if (config.log.level !== old.config.log.level) this.#deps.log.level = config.log.level;
    const created = new Set(built.created);
    await reloadKept(built.parts.instances.filter((i) => !created.has(i)), this.#deps.log);
    void this.#retireWhenIdle(old, built.leftovers);
    this.#lastFailure = null;
    const result: ReloadResult = { ok: true, generation: this.#generation.number, errors: [], changes, needRestart: diff.needRestart, trigger };
    this.#deps.log.info({ generation: result.generation, trigger, changes, ...(diff.needRestart.length ? { needRestart: diff.needRestart } : {}) }, 'configuration reloaded');
    if (diff.needRestart.length > 0) this.#deps.log.warn({ needRestart: diff.needRestart }, 'some changes apply only after a restart; the running values are kept');
    return result;
  }

  #failed(trigger: string, errors: string[]): ReloadResult {
    const generation = this.#generation.number;
    this.#lastFailure = { at: new Date().toISOString(), errors };
    this.#deps.log.error({ trigger, generation, errors }, `configuration reload failed: still running generation ${generation}`);
    return { ok: false, generation, errors, changes: [], needRestart: [], trigger };
  }

  /**
   * The products a reload replaced are retired once the connections their generation was still
   * sniffing or connecting have been dispatched (bounded by that generation's own deadlines).
   */
  async #retireWhenIdle(old: Generation, leftovers: readonly PluginInstance[]): Promise<void> {
    if (leftovers.length === 0) return;
    for (const i of leftovers) this.#retiring.add(i);
    const { sniff, timeouts, retries } = old.config;
    await old.pipeline.whenIdle(sniff.timeoutMs + timeouts.connectMs * (retries + 1) + 1000);
    const still = leftovers.filter((i) => this.#retiring.delete(i));
    await retire(still, this.#deps.log, this.#deps.loader.releasePeers);
  }

  /** Binds the admin API for `config` when its address is new (commit closes the one it replaces); a new token or host list applies in place. */
  async #prepareAdmin(config: TetherConfig): Promise<RebindPlan> {
    const { log } = this.#deps;
    const make = (): AdminServer => new AdminServer({ log, source: this.adminSource(), token: config.admin?.token, hosts: config.admin?.hosts ?? [] });
    const plan = await planRebind('admin API', this.#admin, this.#generation.config.admin?.listen, config.admin?.listen, make, (next) => (this.#admin = next));
    return {
      commit: () => {
        // A server kept at its address takes the new token and host names; a new one has them.
        const kept = this.#admin;
        const changes = plan.commit();
        if (kept && kept === this.#admin && config.admin) kept.server.setAccess(config.admin.token, config.admin.hosts);
        return changes;
      },
      rollback: plan.rollback,
    };
  }

  /** The health checker for `config`, its results counted in the metrics. */
  #healthChecker(config: TetherConfig): HealthChecker {
    const checker = healthCheckerFor(this.#deps.pool, config, this.#deps.log, this.#deps.stats);
    const metrics = this.#metrics;
    if (metrics) checker.observe((id, ok) => metrics.healthCheck(id, ok));
    return checker;
  }

  /** Binds the metrics listener where `config` says, when that changed; commit closes the one it replaces. */
  #prepareMetrics(config: TetherConfig): Promise<RebindPlan> {
    const metrics = this.#metrics;
    const wanted = metrics ? config.metrics.listen : undefined;
    const make = (): MetricsServer => new MetricsServer(() => metrics!.exposition(), this.#deps.log);
    return planRebind('metrics listener', this.#metricsServer, this.#generation.config.metrics.listen, wanted, make, (next) => (this.#metricsServer = next));
  }

  /** What the admin API shows and changes for this balancer (served by its own admin listener, or, in a worker, through the primary). */
  adminSource(): AdminSource {
    // Read through `this` on every request: a reload replaces the chains it shows.
    const server = this;
    return localAdminSource({
      stats: this.#deps.stats,
      pool: this.#deps.pool,
      get strategies() {
        return server.strategies;
      },
      explain: (bytes) => this.explain(bytes),
      reload: (trigger) => this.reload(trigger ?? 'admin'),
      status: async () => this.status(),
      metrics: this.#metrics,
    });
  }

  /** One function for every socket (no closure per connection): `this` is the closed socket. */
  readonly #untrack = ((clients: Set<Socket>) => function (this: Socket): void {
    clients.delete(this);
  })(this.#clients);
}

/** An error as the lines an operator reads: a ConfigError lists one problem per line. */
function errorLines(err: unknown): string[] {
  return describe(err).split('\n').map((line) => line.trim()).filter(Boolean);
}
