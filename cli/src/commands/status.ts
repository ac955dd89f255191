import type { StatusView } from '@tether/core';
import { expectPositionals, parseCommand } from '../args.ts';
import { print } from '../output.ts';
import { COMMAND_USAGE } from '../usage.ts';
import { AdminClient, ADMIN_FLAGS } from './admin-client.ts';

/** `tether status`: which configuration a running balancer runs (generation, since when, from which file). */
export async function statusCommand(argv: string[]): Promise<void> {
  const args = parseCommand(argv, COMMAND_USAGE.status, ADMIN_FLAGS);
  if (!args) return;
  expectPositionals('status', args.positionals, []);
  const status = await AdminClient.from(args.values).get<StatusView>('/status');
  if (args.values.json) return print(status);
  const lines = [
    `generation ${status.generation}, loaded ${status.loadedAt} (${status.trigger})`,
    `config     ${status.file ?? 'none (flags and environment)'}`,
    `pid        ${status.pid}, up ${status.uptimeSeconds} s since ${status.startedAt}, node ${status.node}`,
  ];
  if (status.lastFailure) lines.push(`last reload FAILED at ${status.lastFailure.at}:`, ...status.lastFailure.errors.map((e) => `  ${e}`));
  for (const w of status.workers ?? []) lines.push(`worker ${w.worker} pid ${w.pid}: generation ${w.generation}, loaded ${w.loadedAt}`);
  process.stdout.write(`${lines.join('\n')}\n`);
}
