import { PluginRegistry, type TetherPlugin } from '@tether/core';
import discovery from '@tether/plugin-discovery';
import mqttKeys from '@tether/plugin-mqtt-keys';
import proxyProtocol, { proxyIn } from '@tether/plugin-proxy-protocol';
import tlsPlugins from '@tether/plugin-tls';
import connectGuard from '@tether/strategy-connect-guard';
import leastConnections from '@tether/strategy-least-connections';
import randomTwoChoices from '@tether/strategy-random-two-choices';
import rendezvousHash from '@tether/strategy-rendezvous-hash';
import roundRobin from '@tether/strategy-round-robin';
import stickTable from '@tether/strategy-stick-table';

/** The plugins that ship with Tether. They are ordinary plugin packages, registered like any other. */
export const BUILTIN_PLUGINS: readonly TetherPlugin[] = [
  ...mqttKeys,
  stickTable,
  rendezvousHash,
  leastConnections,
  roundRobin,
  randomTwoChoices,
  connectGuard,
  proxyProtocol,
  proxyIn,
  ...tlsPlugins,
  ...discovery,
];

export function builtinRegistry(): PluginRegistry {
  const registry = new PluginRegistry();
  for (const plugin of BUILTIN_PLUGINS) registry.register(plugin, `@tether/${packageOf(plugin)}`);
  return registry;
}

function packageOf(plugin: TetherPlugin): string {
  if (plugin === proxyIn) return 'plugin-proxy-protocol';
  if (tlsPlugins.includes(plugin)) return 'plugin-tls';
  if (plugin.kind === 'provider') return 'plugin-discovery';
  if (plugin.kind === 'strategy') return `strategy-${plugin.name}`;
  return plugin.kind === 'sink' ? `plugin-${plugin.name}` : 'plugin-mqtt-keys';
}
