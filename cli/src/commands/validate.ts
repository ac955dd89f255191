import { createLogger, createTether, formatHostPort, loadConfig, type ChainEntry, type TetherConfig } from '@tether/core';
import { configSources, CONFIG_FLAGS, parseCommand } from '../args.ts';
import { builtinRegistry } from '../builtins.ts';
import { COMMAND_USAGE } from '../usage.ts';

/**
 * `tether validate -c FILE`: the schema check plus loading every plugin and validating its
 * options, without opening a port. Prints a summary and exits 0, or the errors and exits 1.
 */
export async function validate(argv: string[]): Promise<void> {
  const args = parseCommand(argv, COMMAND_USAGE.validate, CONFIG_FLAGS);
  if (!args) return;
  const { values } = args;
  const config = loadConfig(configSources(values));
  const { container, server } = await createTether({ config, registry: builtinRegistry(), log: createLogger('silent') });
  // Closing ends what the plugins opened (a Redis store's connections), so the command exits.
  await server.close();
  container.dispose();
  const where = values.config ? String(values.config) : 'flags and environment';
  process.stdout.write(
    `${where}: configuration is valid\n` +
      `  listen   ${config.listeners.map((l) => `${l.name === 'main' ? '' : `${l.name}=`}${formatHostPort(l.address)}${l.transports.length || l.websocket ? ` (${[...l.transports.map((t) => t.use), ...(l.websocket ? [`websocket ${l.websocket.path}`] : [])].join(' → ')})` : ''}`).join(', ')}\n` +
      `  admin    ${adminLine(config)}\n` +
      `  backends ${config.backends.length ? config.backends.map((b) => `${b.id}=${formatHostPort(b)}${b.sendProxy !== 'none' ? ` (proxy ${b.sendProxy})` : ''}`).join(', ') : config.providers.length ? 'none static' : `none (${config.embedded.brokers} embedded brokers)`}\n` +
      (config.providers.length ? `  providers ${chainLine(config.providers)}\n` : '') +
      `  key      ${chainLine(config.key)}\n` +
      `  select   ${chainLine(config.select)}\n` +
      `  sinks    ${chainLine(config.sinks) || 'none'}\n`,
  );
}

/** Each entry by name; an entry that applies to only some clients says which (`when`). */
function chainLine(chain: readonly ChainEntry[]): string {
  return chain.map((e) => (e.when && e.when !== 'always' ? `${e.use} (when ${e.when})` : e.use)).join(' → ');
}

/** Where the admin API listens and whether it needs a token (never the token itself). */
function adminLine(config: TetherConfig): string {
  if (!config.admin) return 'off';
  const { listen, token } = config.admin;
  return `${formatHostPort(listen)}${token ? ` (token from ${token.source})` : ''}`;
}
