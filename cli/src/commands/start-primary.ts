import { AdminServer, formatHostPort, MetricsServer, Supervisor, WORKER_BACKENDS_ENV, type Logger, type TetherConfig } from '@tether/core';
import type { EmbeddedBroker } from '@tether/embedded-broker';

/**
 * The primary of `tether start --workers N`: it holds no client connection. It forks the workers
 * (each runs the balancer on the shared listeners), owns the embedded brokers (started once, their
 * addresses given to every worker), relays the plugins' peer messages, serves the admin API over
 * all workers, restarts a worker that dies (bounded), and stops them all on SIGINT/SIGTERM.
 */
export async function startPrimary(config: TetherConfig, log: Logger, brokers: EmbeddedBroker[]): Promise<void> {
  const env: Record<string, string> = brokers.length > 0 ? { [WORKER_BACKENDS_ENV]: JSON.stringify(config.backends) } : {};
  const supervisor = new Supervisor({ workers: config.workers, scheduling: config.cluster.scheduling, log, env });
  let admin: AdminServer | undefined;
  let metrics: MetricsServer | undefined;
  let stopping = false;
  const shutdown = async (): Promise<void> => {
    await admin?.close();
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

  let readiness;
  try {
    readiness = await supervisor.start();
    if (config.admin) {
      admin = new AdminServer({ log, source: supervisor.admin });
      const bound = await admin.start(config.admin);
      readiness = { ...readiness, admin: `http://${formatHostPort(bound)}` };
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
}
