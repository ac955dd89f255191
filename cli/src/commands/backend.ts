import type { Backend } from '@tether/core';
import { parse, UsageError } from '../args.ts';
import { adminUrl, getJson } from './admin-url.ts';

const FLAGS = { admin: { type: 'string' }, config: { type: 'string', short: 'c' }, json: { type: 'boolean' } } as const;
const STATES = ['ready', 'drain', 'maint'];

/**
 * `tether backend list` and `tether backend set NAME ready|drain|maint` against a running
 * balancer (HAProxy's `show servers state` and `set server ... state`).
 */
export async function backendCommand(argv: string[]): Promise<void> {
  const { values, positionals } = parse(argv, FLAGS);
  const [action, name, state] = positionals;
  const base = adminUrl(values);
  if (action === 'list') {
    const { backends } = await getJson<{ backends: (Backend & { healthy: boolean; adminState: string })[] }>(`${base}/backends`);
    if (values.json) return void process.stdout.write(`${JSON.stringify(backends, null, 2)}\n`);
    for (const b of backends) {
      process.stdout.write(`${b.id.padEnd(20)} ${`${b.host}:${b.port}`.padEnd(24)} state=${b.state} admin=${b.adminState} healthy=${b.healthy} weight=${b.weight} active=${b.activeConnections}${b.maxconn ? `/${b.maxconn}` : ''}\n`);
    }
    return;
  }
  if (action === 'set' && name && state) {
    if (!STATES.includes(state)) throw new UsageError(`state must be one of ${STATES.join(', ')}; got "${state}"`);
    const result = await getJson<{ changed: boolean; backend: Backend }>(`${base}/backends/${encodeURIComponent(name)}/state`, { method: 'POST', body: state });
    process.stdout.write(`${name}: ${result.changed ? `now ${state}` : `already ${state}`}\n`);
    return;
  }
  throw new UsageError('usage: tether backend list | tether backend set NAME ready|drain|maint  [--admin HOST:PORT | -c FILE]');
}
