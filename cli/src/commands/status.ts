import type { StatusView } from '@tether/core';
import { parse } from '../args.ts';
import { adminUrl, getJson } from './admin-url.ts';

const FLAGS = { admin: { type: 'string' }, config: { type: 'string', short: 'c' }, json: { type: 'boolean' } } as const;

/** `tether status`: which configuration a running balancer runs (generation, since when, from which file). */
export async function statusCommand(argv: string[]): Promise<void> {
  const { values } = parse(argv, FLAGS);
  const status = await getJson<StatusView>(`${adminUrl(values)}/status`);
  if (values.json) return void process.stdout.write(`${JSON.stringify(status, null, 2)}\n`);
  const lines = [
    `generation ${status.generation}, loaded ${status.loadedAt} (${status.trigger})`,
    `config     ${status.file ?? 'none (flags and environment)'}`,
    `pid        ${status.pid}, up ${status.uptimeSeconds} s since ${status.startedAt}, node ${status.node}`,
  ];
  if (status.lastFailure) lines.push(`last reload FAILED at ${status.lastFailure.at}:`, ...status.lastFailure.errors.map((e) => `  ${e}`));
  for (const w of status.workers ?? []) lines.push(`worker ${w.worker} pid ${w.pid}: generation ${w.generation}, loaded ${w.loadedAt}`);
  process.stdout.write(`${lines.join('\n')}\n`);
}
