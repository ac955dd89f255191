import { isWeight, WEIGHT_MAX, WEIGHT_MIN, type Backend } from '@tether/core';
import { expectPositionals, parseCommand, UsageError } from '../args.ts';
import { print } from '../output.ts';
import { COMMAND_USAGE } from '../usage.ts';
import { AdminClient, ADMIN_FLAGS } from './admin-client.ts';

const STATES = ['ready', 'drain', 'maint'];

type BackendRow = Backend & { healthy: boolean; adminState: string; configWeight?: number; persistentConnections?: number };

/*
 * `tether backend list` and `tether backend set NAME ready|drain|maint` or `NAME weight N` against
 * a running balancer (HAProxy's `show servers state`, `set server … state` and `… weight`).
 */

export async function backendList(argv: string[]): Promise<void> {
  const args = parseCommand(argv, COMMAND_USAGE['backend list'], ADMIN_FLAGS);
  if (!args) return;
  expectPositionals('backend list', args.positionals, []);
  const { backends } = await AdminClient.from(args.values).get<{ backends: BackendRow[] }>('/backends');
  if (args.values.json) return print(backends);
  for (const b of backends) {
    const weight = b.configWeight !== undefined && b.configWeight !== b.weight ? `${b.weight} (config ${b.configWeight})` : String(b.weight);
    process.stdout.write(`${b.id.padEnd(20)} ${`${b.host}:${b.port}`.padEnd(24)} state=${b.state} admin=${b.adminState} healthy=${b.healthy} weight=${weight} active=${b.activeConnections}${b.maxconn ? `/${b.maxconn}` : ''} source=${b.source ?? 'static'}${b.backup ? ' backup' : ''}${b.persistentConnections ? ` persistent=${b.persistentConnections}` : ''}\n`);
  }
}

export async function backendSet(argv: string[]): Promise<void> {
  const args = parseCommand(argv, COMMAND_USAGE['backend set'], ADMIN_FLAGS);
  if (!args) return;
  const { positionals, values } = args;
  const usage = COMMAND_USAGE['backend set'];
  const what = positionals[1];
  if (what === 'weight') {
    const [name, , text] = expectPositionals('backend set', positionals, ['NAME', 'weight', 'N']);
    const weight = /^\d+$/.test(text!) ? Number(text) : NaN;
    if (!isWeight(weight)) throw new UsageError(`weight must be a whole number from ${WEIGHT_MIN} to ${WEIGHT_MAX}; got "${text!}"`, usage);
    const result = await AdminClient.from(values).send<{ changed: boolean }>('POST', `/backends/${encodeURIComponent(name!)}/weight`, { weight });
    if (values.json) return print(result);
    return void process.stdout.write(`${name!}: ${result.changed ? 'now' : 'already'} weight ${weight}\n`);
  }
  // NAME STATE, or NAME state STATE (HAProxy's word order).
  const [name, state] = what === 'state'
    ? expectPositionals('backend set', positionals, ['NAME', 'state', 'STATE']).filter((_, i) => i !== 1)
    : expectPositionals('backend set', positionals, ['NAME', 'STATE']);
  if (!STATES.includes(state!)) throw new UsageError(`state must be one of ${STATES.join(', ')}; got "${state!}"`, usage);
  const result = await AdminClient.from(values).send<{ changed: boolean }>('POST', `/backends/${encodeURIComponent(name!)}/state`, { state });
  if (values.json) return print(result);
  process.stdout.write(`${name!}: ${result.changed ? `now ${state}` : `already ${state}`}\n`);
}
