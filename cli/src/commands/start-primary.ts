import {
  AdminServer, diffConfig, formatHostPort, loadConfig, MetricsServer, planRebind, Supervisor, WORKER_BACKENDS_ENV,
  type Bound, type RebindPlan,
  type ConfigSources, type Logger, type ReloadResult, type StatusView, type TetherConfig,
} from '@tether/core';
import { resolve } from 'node:path';
import type { EmbeddedBroker } from '@tether/embedded-broker';
import { watchConfig } from '../reload-source.ts';

export interface PrimaryOptions {
  /** Where a reload reads the configuration (the workers read it themselves from the same sources). */
  readonly sources: ConfigSources;
  /** What start did to the loaded configuration (embedded brokers as backends). */
  readonly adjust: (config: TetherConfig) => TetherConfig;
  readonly watch: boolean;
}

/**
 * The primary of `tether start --workers N`: it holds no client connection. It forks the workers
 * (each runs the balancer on the shared listeners), owns the embedded brokers (started once, their
 * addresses given to every worker), relays the plugins' peer messages, serves the admin API over
 * all workers, restarts a worker that dies (bounded), stops them all on SIGINT/SIGTERM, and on
 * SIGHUP (or `tether reload`) checks the configuration and has every worker reload it.
 */
export async function startPrimary(config: TetherConfig, log: Logger, brokers: EmbeddedBroker[], options: PrimaryOptions): Promise<void> {
  const env: Record<string, string> = brokers.length > 0 ? { [WORKER_BACKENDS_ENV]: JSON.stringify(config.backends) } : {};
  const supervisor = new Supervisor({ workers: config.workers, scheduling: config.cluster.scheduling, log, env });
  const state = new PrimaryState(config);
  let admin: Bound<AdminServer> | undefined;
  let metrics: MetricsServer | undefined;
  let stopping = false;
  const shutdown = async (): Promise<void> => {
    await admin?.server.close();
    await metrics?.close();
    await supervisor.stop();
    await Promise.all(brokers.map((b) => b.close()));
  };
  const stop = (signal: string): void => {
    if (stopping) {
      log.warn({ signal }, 'second signal while stopping: exiting at once');
      supervisor.kill();
      process.exit(1);
    }
    stopping = true;
    log.info({ signal }, 'stopping');
    shutdown().then(
      () => {
        log.info('tether stopped');
        process.exit(0);
      },
      (err: unknown) => {
        log.error({ err }, 'error while stopping');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  supervisor.onFatal((message) => {
    stopping = true;
    void shutdown().finally(() => {
      process.stderr.write(`tether: ${message}\n`);
      process.exit(1);
    });
  });

  /** Binds the admin API where `next` says, if that changed (commit closes the old one); a kept one takes the new token and host names. */
  const prepareAdmin = async (next: TetherConfig): Promise<RebindPlan> => {
    const make = (): AdminServer => new AdminServer({ log, source: supervisor.admin, token: next.admin?.token, hosts: next.admin?.hosts ?? [] });
    const plan = await planRebind('admin API', admin, state.config.admin?.listen, next.admin?.listen, make, (bound) => (admin = bound));
    return {
      commit: () => {
        const kept = admin;
        const changes = plan.commit();
        if (kept && kept === admin && next.admin) kept.server.setAccess(next.admin.token, next.admin.hosts);
        return changes;
      },
      rollback: plan.rollback,
    };
  };

  const reload = async (trigger: string): Promise<ReloadResult> => {
    let next: TetherConfig;
    let adminChange;
    try {
      next = options.adjust(loadConfig(options.sources));
      adminChange = await prepareAdmin(next);
    } catch (err) {
      return state.failed(log, trigger, err instanceof Error ? err.message.split('\n').map((l) => l.trim()).filter(Boolean) : [String(err)]);
    }
    const workers = await supervisor.admin.reloadWorkers(trigger);
    const applied = workers.filter((w) => w.ok);
    const errors = workers.filter((w) => !w.ok).flatMap((w) => w.errors.map((e) => `worker ${w.worker}: ${e}`));
    if (applied.length === 0) {
      await adminChange.rollback();
      return state.failed(log, trigger, errors.length > 0 ? errors : ['no worker is running']);
    }
    const { changes, needRestart } = diffConfig(state.config, next);
    // The primary's metrics listener is bound once, at start.
    const metricsMoved = changes.find((c) => c.startsWith('metrics.listen:'));
    if (metricsMoved) needRestart.push(metricsMoved);
    supervisor.admin.configured(configuredChanges(state.config, next));
    const generation = state.loaded(next, trigger);
    const result: ReloadResult = {
      ok: errors.length === 0, generation, errors, trigger, needRestart,
      changes: [...adminChange.commit(), ...(applied[0]?.changes ?? changes)],
      workers: workers.map(({ worker, ok, generation: g, errors: e }) => ({ worker, ok, generation: g, errors: e })),
    };
    if (result.ok) log.info({ generation, trigger, changes: result.changes, workers: workers.length }, 'configuration reloaded by every worker');
    else log.error({ generation, trigger, errors }, 'configuration reloaded by some workers only; the others keep their generation');
    if (needRestart.length > 0) log.warn({ needRestart }, 'some changes apply only after a restart; the running values are kept');
    return result;
  };
  let reloads: Promise<unknown> = Promise.resolve();
  const serialized = (trigger: string): Promise<ReloadResult> => {
    const run = reloads.then(() => reload(trigger));
    reloads = run.catch(() => undefined);
    return run;
  };
  const file = options.sources.file ? resolve(options.sources.file) : undefined;
  supervisor.admin.control({ reload: serialized, status: () => state.status(file) });
  process.on('SIGHUP', () => {
    if (!stopping) void serialized('SIGHUP');
  });

  let readiness;
  try {
    readiness = await supervisor.start();
    if (config.admin) {
      const server = new AdminServer({ log, source: supervisor.admin, token: config.admin.token, hosts: config.admin.hosts });
      admin = { server, address: await server.start(config.admin.listen) };
      readiness = { ...readiness, admin: `http://${formatHostPort(admin.address)}` };
    }
    if (config.metrics.listen) {
      // One scrape of the primary gives the sum over the workers (cluster-metrics.ts).
      metrics = new MetricsServer(async () => (await supervisor.admin.metrics())!, log);
      const bound = await metrics.start(config.metrics.listen);
      readiness = { ...readiness, metrics: `http://${formatHostPort(bound)}/metrics` };
    }
  } catch (err) {
    if (stopping) return;
    stopping = true;
    await shutdown();
    throw err;
  }
  const { t: _t, ...fields } = readiness as Record<string, unknown>;
  log.info({ ...fields, admin: readiness.admin, ...(readiness.metrics ? { metrics: readiness.metrics } : {}), workers: config.workers, scheduling: config.cluster.scheduling, pids: supervisor.pids }, 'tether listening');
  if (options.watch) watchConfig(options.sources, log, () => void serialized('watch'));
}

/** The primary's own record of the configuration in force: its generation and when it was loaded. */
class PrimaryState {
  config: TetherConfig;
  #generation = 1;
  #loadedAt = new Date();
  #trigger = 'start';
  #lastFailure: StatusView['lastFailure'] = null;
  readonly #startedAt = new Date();

  constructor(config: TetherConfig) {
    this.config = config;
  }

  loaded(next: TetherConfig, trigger: string): number {
    // Worker count, scheduling and embedded brokers keep their running values until a restart.
    this.config = { ...next, workers: this.config.workers, cluster: this.config.cluster, embedded: this.config.embedded, metrics: this.config.metrics };
    this.#loadedAt = new Date();
    this.#trigger = trigger;
    this.#lastFailure = null;
    return ++this.#generation;
  }

  failed(log: Logger, trigger: string, errors: string[]): ReloadResult {
    this.#lastFailure = { at: new Date().toISOString(), errors };
    log.error({ trigger, generation: this.#generation, errors }, `configuration reload failed: still running generation ${this.#generation}`);
    return { ok: false, generation: this.#generation, errors, changes: [], needRestart: [], trigger };
  }

  status(file: string | undefined): StatusView {
    return {
      generation: this.#generation,
      loadedAt: this.#loadedAt.toISOString(),
      file: file ?? null,
      trigger: this.#trigger,
      lastFailure: this.#lastFailure,
      pid: process.pid,
      startedAt: this.#startedAt.toISOString(),
      uptimeSeconds: Math.round((Date.now() - this.#startedAt.getTime()) / 1000),
      node: process.version,
    };
  }
}

/** Backends whose state or weight the new configuration changes (runtime values give way to it). */
function configuredChanges(old: TetherConfig, next: TetherConfig): { states: string[]; weights: string[] } {
  const before = new Map(old.backends.map((b) => [b.id, b]));
  const states: string[] = [];
  const weights: string[] = [];
  for (const b of next.backends) {
    const was = before.get(b.id);
    if (!was || was.state !== b.state) states.push(b.id);
    if (!was || was.weight !== b.weight) weights.push(b.id);
  }
  return { states, weights };
}
