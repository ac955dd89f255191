import { createLogger, createTether, formatHostPort, loadConfig, type TetherConfig } from '@tether/core';
import { startEmbeddedBrokers, type EmbeddedBroker } from '@tether/embedded-broker';
import { configSources, CONFIG_FLAGS, parse } from '../args.ts';
import { builtinRegistry } from '../builtins.ts';

/** `tether start`: load config, start embedded brokers if there are no backends, run until a signal. */
export async function start(argv: string[]): Promise<void> {
  const { values } = parse(argv, CONFIG_FLAGS);
  let config: TetherConfig = loadConfig(configSources(values));
  const log = createLogger(config.log.level);
  let brokers: EmbeddedBroker[] = [];
  if (config.backends.length === 0) {
    brokers = await startEmbeddedBrokers(config.embedded.brokers);
    config = {
      ...config,
      backends: brokers.map((b) => ({ id: b.id, host: b.host, port: b.port, weight: 1, state: 'ready', sendProxy: 'none' })),
    };
    log.info({ brokers: brokers.map((b) => `${b.id}=${formatHostPort(b)}`) },
      `no backends configured: started ${brokers.length} embedded aedes brokers on loopback (configure backends or --backend to use your own)`);
  }
  const { server } = await createTether({ config, registry: builtinRegistry(), log }).catch(async (err: unknown) => {
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
  try {
    await server.start();
  } catch (err) {
    await Promise.all(brokers.map((b) => b.close()));
    throw err;
  }
}
