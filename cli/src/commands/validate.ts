import { createLogger, createTether, formatHostPort, loadConfig } from '@tether/core';
import { configSources, CONFIG_FLAGS, parse } from '../args.ts';
import { builtinRegistry } from '../builtins.ts';

/**
 * `tether validate -c FILE`: the schema check plus loading every plugin and validating its
 * options, without opening a port. Prints a summary and exits 0, or the errors and exits 1.
 */
export async function validate(argv: string[]): Promise<void> {
  const { values } = parse(argv, CONFIG_FLAGS);
  const config = loadConfig(configSources(values));
  const { container, server } = await createTether({ config, registry: builtinRegistry(), log: createLogger('silent') });
  // Closing ends what the plugins opened (a Redis store's connections), so the command exits.
  await server.close();
  container.dispose();
  const where = values.config ? String(values.config) : 'flags and environment';
  process.stdout.write(
    `${where}: configuration is valid\n` +
      `  listen   ${config.listeners.map((l) => `${l.name === 'main' ? '' : `${l.name}=`}${formatHostPort(l.address)}${l.transports.length ? ` (${l.transports.map((t) => t.use).join(' → ')})` : ''}`).join(', ')}\n` +
      `  admin    ${config.admin ? formatHostPort(config.admin) : 'off'}\n` +
      `  backends ${config.backends.length ? config.backends.map((b) => `${b.id}=${formatHostPort(b)}${b.sendProxy !== 'none' ? ` (proxy ${b.sendProxy})` : ''}`).join(', ') : `none (${config.embedded.brokers} embedded brokers)`}\n` +
      `  key      ${config.key.map((e) => e.use).join(' → ')}\n` +
      `  select   ${config.select.map((e) => e.use).join(' → ')}\n` +
      `  sinks    ${config.sinks.map((e) => e.use).join(' → ') || 'none'}\n`,
  );
}
