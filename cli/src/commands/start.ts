import cluster from 'node:cluster';
import { createLogger, createTether, formatHostPort, loadConfig, type ConfigSources, type Logger, type TetherConfig } from '@tether/core';
import { startEmbeddedBrokers, type EmbeddedBroker } from '@tether/embedded-broker';
import { configSources, CONFIG_FLAGS, parseCommand, UsageError } from '../args.ts';
import { builtinRegistry } from '../builtins.ts';
import { reloadSource, watchConfig } from '../reload-source.ts';
import { COMMAND_USAGE } from '../usage.ts';
import { startPrimary } from './start-primary.ts';
import { startWorker } from './start-worker.ts';

const FLAGS = { ...CONFIG_FLAGS, watch: { type: 'boolean' } } as const;

/**
 * `tether start`: load config, start embedded brokers if there are no backends, run until a
 * signal; SIGHUP (and, with --watch, a change of the config file) reloads the configuration in
 * place. With `workers` above 1 this process becomes the cluster's primary (start-primary.ts)
 * and forks the workers, which run this same command and land in start-worker.ts.
 */
export async function start(argv: string[]): Promise<void> {
  const args = parseCommand(argv, COMMAND_USAGE.start, FLAGS);
  if (!args) return;
  const { values } = args;
  const sources = configSources(values);
  if (values.watch && !sources.file) throw new UsageError('--watch watches the configuration file: give it with -c FILE', COMMAND_USAGE.start);
  const config: TetherConfig = loadConfig(sources);
  if (cluster.isWorker) return startWorker(config, sources);
  const log = createLogger(config.log.level);
  const brokers = await embeddedBrokers(config, log);
  const withEmbedded = (c: TetherConfig): TetherConfig => (brokers.length === 0 || c.backends.length > 0 || c.providers.length > 0 ? c : { ...c, backends: brokers.map((b) => ({ id: b.id, host: b.host, port: b.port, weight: 1, state: 'ready' as const, sendProxy: 'none' as const })) });
  if (config.workers > 1) return startPrimary(withEmbedded(config), log, brokers, { sources, adjust: withEmbedded, watch: values.watch === true });
  return startSingle(withEmbedded(config), log, brokers, sources, values.watch === true, withEmbedded);
}

/** With no backends configured: two (by default) aedes brokers in this process, said so in the log. */
async function embeddedBrokers(config: TetherConfig, log: Logger): Promise<EmbeddedBroker[]> {
  if (config.backends.length > 0 || config.providers.length > 0) return [];
  // With a WebSocket listener the demo brokers also serve ws:// themselves (path /mqtt), to compare
  // a browser client going straight to a broker with one going through Tether (bridged to their TCP ports).
  const websocket = config.listeners.some((l) => l.websocket !== undefined);
  const brokers = await startEmbeddedBrokers(config.embedded.brokers, { websocket });
  log.info({ brokers: brokers.map((b) => `${b.id}=${formatHostPort(b)}`), ...(websocket ? { websocket: brokers.map((b) => `${b.id}=ws://${b.host}:${b.wsPort}/mqtt`) } : {}) },
    `no backends configured: started ${brokers.length} embedded aedes brokers on loopback (configure backends or --backend to use your own)`);
  return brokers;
}

/** `workers: 1`: the whole balancer in this process. */
async function startSingle(config: TetherConfig, log: Logger, brokers: EmbeddedBroker[], sources: ConfigSources, watch: boolean, adjust: (c: TetherConfig) => TetherConfig): Promise<void> {
  const source = reloadSource(sources, adjust);
  const { server } = await createTether({ config, registry: builtinRegistry(), log, source }).catch(async (err: unknown) => {
    await Promise.all(brokers.map((b) => b.close()));
    throw err;
  });
  // Handlers go in before the listener opens: a supervisor may signal as soon as it sees readiness.
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) {
      // A second signal while stopping: the operator wants out now, even if a plugin hangs.
      log.warn({ signal }, 'second signal while stopping: exiting at once');
      process.exit(1);
    }
    stopping = true;
    log.info({ signal }, 'stopping');
    server
      .close()
      .then(() => Promise.all(brokers.map((b) => b.close())))
      .then(
        () => process.exit(0),
        (err: unknown) => {
          log.error({ err }, 'error while stopping');
          process.exit(1);
        },
      );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  // The result is logged by the server (`configuration reloaded` or `configuration reload failed`).
  const reload = (trigger: string): void => {
    if (!stopping) void server.reload(trigger);
  };
  process.on('SIGHUP', () => reload('SIGHUP'));
  try {
    await server.start();
  } catch (err) {
    await Promise.all(brokers.map((b) => b.close()));
    throw err;
  }
  if (watch) watchConfig(sources, log, () => reload('watch'));
}
