import { importPluginModule, loadConfig, type TetherPlugin } from '@tether/core';
import { configSources, CONFIG_FLAGS, parseCommand } from '../args.ts';
import { builtinRegistry } from '../builtins.ts';
import { COMMAND_USAGE } from '../usage.ts';

const FLAGS = { ...CONFIG_FLAGS, json: { type: 'boolean' } } as const;

/** `tether plugins`: every plugin known (built-in and loaded from config), with its options. */
export async function pluginsCommand(argv: string[]): Promise<void> {
  const args = parseCommand(argv, COMMAND_USAGE.plugins, FLAGS);
  if (!args) return;
  const { values } = args;
  const config = loadConfig(configSources(values));
  const registry = builtinRegistry();
  for (const specifier of config.plugins) await importPluginModule(specifier, { registry, baseDir: config.baseDir });
  const rows = registry.list().map(({ plugin, source }) => ({
    name: plugin.name,
    kind: plugin.kind,
    version: plugin.version ?? '-',
    source,
    description: plugin.description ?? '',
    options: describeOptions(plugin),
  }));
  if (values.json) {
    process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
    return;
  }
  for (const r of rows) {
    process.stdout.write(`${r.name}  (${r.kind}, ${r.version}, ${r.source})\n  ${r.description}\n`);
    for (const o of r.options) process.stdout.write(`    ${o.name} = ${JSON.stringify(o.default)}  ${o.doc}\n`);
  }
}

/** Every option of the plugin's convict schema; nested groups (a node without a default) as dotted names. */
function describeOptions(plugin: TetherPlugin): { name: string; default: unknown; doc: string }[] {
  const walk = (schema: Record<string, unknown>, prefix: string): { name: string; default: unknown; doc: string }[] =>
    Object.entries(schema).flatMap(([name, node]) => {
      const s = node as { default?: unknown; doc?: string };
      if (typeof node === 'object' && node !== null && !('default' in s)) return walk(node as Record<string, unknown>, `${prefix}${name}.`);
      return [{ name: `${prefix}${name}`, default: s.default, doc: s.doc ?? '' }];
    });
  return walk((plugin.options ?? {}) as Record<string, unknown>, '');
}
