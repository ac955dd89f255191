import { createServer, type Server, type Socket } from 'node:net';
import { fromEvent, mergeMap, type Subscription } from 'rxjs';
import { AdminServer } from './admin/admin-server.ts';
import type { BackendPool } from './backend/backend-pool.ts';
import type { HealthChecker } from './backend/health-checker.ts';
import { explain, type ExplainResult } from './explain.ts';
import { formatHostPort, type HostPort } from './net/address.ts';
import { listen } from './net/listen.ts';
import { ConnectionPipeline, type PipelineDeps } from './pipeline/connection-pipeline.ts';
import type { StrategyChain } from './pipeline/strategy-chain.ts';
import type { Stats } from './stats.ts';

export interface TetherServerDeps extends PipelineDeps {
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
  readonly #server: Server;
  readonly #clients = new Set<Socket>();
  #admin: AdminServer | undefined;
  #subscription: Subscription | undefined;
  #listenAddress: HostPort | undefined;
  #adminAddress: HostPort | undefined;

  constructor(deps: TetherServerDeps) {
    this.#deps = deps;
    this.#server = createServer({ allowHalfOpen: true, pauseOnConnect: false, noDelay: true });
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

  /** Where the MQTT listener is bound (the real port when 0 was asked for). */
  get address(): HostPort {
    if (!this.#listenAddress) throw new Error('TetherServer is not started');
    return this.#listenAddress;
  }

  get adminAddress(): HostPort | undefined {
    return this.#adminAddress;
  }

  async start(): Promise<void> {
    const { config, log } = this.#deps;
    const pipeline = new ConnectionPipeline(this.#deps);
    this.#subscription = fromEvent<Socket>(this.#server, 'connection')
      .pipe(mergeMap((socket) => {
        this.#track(socket);
        return pipeline.handle(socket);
      }))
      .subscribe({ error: (err: unknown) => log.fatal({ err }, 'connection pipeline ended unexpectedly') });
    await listen(this.#server, config.listen, '--listen (TETHER_LISTEN, config key listen)');
    this.#deps.health?.start();
    const bound = this.#server.address();
    this.#listenAddress = typeof bound === 'object' && bound ? { host: bound.address, port: bound.port } : config.listen;
    if (config.admin) {
      this.#admin = new AdminServer({ ...this.#deps, explain: (bytes) => this.explain(bytes) });
      try {
        this.#adminAddress = await this.#admin.start(config.admin);
      } catch (err) {
        this.#admin = undefined;
        await this.close();
        throw err;
      }
    }
    log.info({
      listen: formatHostPort(this.#listenAddress),
      admin: this.#adminAddress && `http://${formatHostPort(this.#adminAddress)}`,
      backends: this.#deps.pool.all().map((b) => `${b.id}=${formatHostPort(b)}`),
      key: this.#deps.extractors.map((e) => e.name),
      select: this.#deps.strategies.strategies.map((s) => s.name),
      sinks: this.#deps.sinks.map((s) => s.name),
    }, 'tether listening');
  }

  explain(bytes: Buffer): Promise<ExplainResult> {
    const { config, extractors, strategies, pool } = this.#deps;
    return explain(bytes, { maxBytes: config.sniff.maxBytes, extractors, strategies, pool });
  }

  /** Stops accepting, closes every client connection (and so its backend side), then the plugins. */
  async close(): Promise<void> {
    this.#deps.lifetime.abort();
    this.#deps.health?.stop();
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    for (const socket of this.#clients) socket.destroy();
    await closed;
    this.#subscription?.unsubscribe();
    await this.#admin?.close();
    await this.#deps.strategies.close();
    this.#deps.log.info('tether stopped');
  }

  #track(socket: Socket): void {
    this.#clients.add(socket);
    socket.once('close', () => this.#clients.delete(socket));
  }
}
