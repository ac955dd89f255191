import cluster from 'node:cluster';
import {
  answerAdmin, createLogger, createTether, describeError, processPort, TetherError, WORKER_BACKENDS_ENV, WorkerPeers,
  type BackendDefinition, type ConfigSources, type TetherConfig, type TetherServer,
} from '@tether/core';
import { builtinRegistry } from '../builtins.ts';
import { reloadSource } from '../reload-source.ts';

/** How long a starting worker waits for the other workers' state before it listens anyway. */
const SYNC_TIMEOUT_MS = 10_000;

/**
 * One worker of `tether start --workers N`: the whole balancer, as with one process, except that
 * the primary serves the admin API (this worker answers it over IPC), the embedded brokers are the
 * primary's (their addresses come in the environment), the plugins' peer channels go through the
 * primary, and the primary decides when to stop and when to reload (it asks over IPC, and this
 * worker reads the configuration itself, from the same file, environment and flags).
 */
export async function startWorker(loaded: TetherConfig, sources: ConfigSources): Promise<void> {
  const id = cluster.worker!.id;
  const port = processPort();
  const log = createLogger(loaded.log.level).child({ worker: id });
  const embedded = process.env[WORKER_BACKENDS_ENV];
  const forWorker = (config: TetherConfig): TetherConfig => ({
    ...config,
    admin: undefined,
    // The primary serves the metrics listener, summed over the workers.
    metrics: { ...config.metrics, listen: undefined },
    ...(embedded && config.backends.length === 0 ? { backends: JSON.parse(embedded) as BackendDefinition[] } : {}),
  });
  const config = forWorker(loaded);
  // Ctrl-C reaches every process of the terminal's group: the primary decides, and tells us.
  process.on('SIGINT', () => {});
  process.on('SIGHUP', () => {});
  let server: TetherServer | undefined;
  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    void (server?.close() ?? Promise.resolve()).then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err: describeError(err) }, 'error while stopping');
        process.exit(1);
      },
    );
  };
  port.onMessage((message) => {
    if (message.t === 'tether:stop') stop();
  });
  process.on('SIGTERM', stop);
  try {
    const peers = new WorkerPeers(port, id, log);
    ({ server } = await createTether({
      config, registry: builtinRegistry(), log, source: reloadSource(sources, forWorker),
      peers: (name) => peers.channel(name), releasePeers: (channel) => peers.release(channel),
    }));
    const own = server;
    const metrics = own.metrics;
    answerAdmin(port, own.adminSource(), log, metrics && (() => metrics.json()));
    await peers.sync(SYNC_TIMEOUT_MS);
    if (stopping) return;
    await own.start({ announce: 'worker listening' });
    port.send({ t: 'tether:ready', ...own.readiness() });
  } catch (err) {
    // The primary prints this message and exits non-zero; it does not restart a worker that cannot start.
    const message = err instanceof TetherError ? err.message : describeError(err);
    log.error({ err: message }, 'worker failed to start');
    await new Promise<void>((resolve) => {
      if (!process.send || !process.connected) return resolve();
      process.send({ t: 'tether:failed', message }, () => resolve());
    });
    process.exit(1);
  }
}
