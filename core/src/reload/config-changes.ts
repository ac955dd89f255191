import type { ChainEntry, TetherConfig } from '../config/types.ts';
import { formatHostPort } from '../net/address.ts';
import { stableJson } from '../plugins/plugin-instances.ts';

/** The parts of a reload that are neither backends nor listeners, said the way an operator reads them. */
export interface ConfigDiff {
  /** Applied by the reload: one line each. */
  readonly changes: string[];
  /** Changed in the file but only applied by a restart (the running value is kept). */
  readonly needRestart: string[];
}

const chain = (entries: readonly ChainEntry[]): string =>
  entries.map((e) => `${e.use}${Object.keys(e.options).length ? stableJson(e.options) : ''}${e.when && e.when !== 'always' ? ` when ${e.when}` : ''}`).join(', ') || 'none';

/** What changes between two configurations besides backends and listeners (pool and listener set report those). */
export function diffConfig(old: TetherConfig, next: TetherConfig): ConfigDiff {
  const changes: string[] = [];
  const needRestart: string[] = [];
  const compare = (what: string, a: string, b: string, list = changes): void => {
    if (a !== b) list.push(`${what}: ${a} → ${b}`);
  };
  compare('providers', chain(old.providers), chain(next.providers));
  compare('key', chain(old.key), chain(next.key));
  compare('select', chain(old.select), chain(next.select));
  compare('sinks', chain(old.sinks), chain(next.sinks));
  compare('sniff', stableJson(old.sniff), stableJson(next.sniff));
  compare('timeouts', stableJson(old.timeouts), stableJson(next.timeouts));
  compare('retries', String(old.retries), String(next.retries));
  compare('healthCheck', stableJson({ ...old.healthCheck, password: '' }), stableJson({ ...next.healthCheck, password: '' }));
  if (old.healthCheck.password !== next.healthCheck.password) changes.push('healthCheck.password changed');
  compare('log.level', old.log.level, next.log.level);
  compare('admin', old.admin ? formatHostPort(old.admin.listen) : 'off', next.admin ? formatHostPort(next.admin.listen) : 'off');
  // The token itself is never shown: only that it changed.
  if ((old.admin?.token?.reveal() ?? '') !== (next.admin?.token?.reveal() ?? '')) changes.push(`admin token ${next.admin?.token ? (old.admin?.token ? 'changed' : 'set') : 'removed'}`);
  compare('admin.hosts', old.admin?.hosts.join(', ') || 'none', next.admin?.hosts.join(', ') || 'none');
  // A listener's WebSocket options apply to the connections it accepts after the reload.
  for (const listener of next.listeners) {
    const before = old.listeners.find((l) => l.name === listener.name);
    if (before) compare(`listener ${listener.name} websocket`, before.websocket ? stableJson(before.websocket) : 'off', listener.websocket ? stableJson(listener.websocket) : 'off');
  }
  compare('plugins', old.plugins.join(', ') || 'none', next.plugins.join(', ') || 'none');
  compare('metrics.listen', old.metrics.listen ? formatHostPort(old.metrics.listen) : 'off', next.metrics.listen ? formatHostPort(next.metrics.listen) : 'off');
  compare('metrics.enabled', String(old.metrics.enabled), String(next.metrics.enabled), needRestart);
  compare('workers', String(old.workers), String(next.workers), needRestart);
  compare('cluster.scheduling', old.cluster.scheduling, next.cluster.scheduling, needRestart);
  compare('embedded.brokers', String(old.embedded.brokers), String(next.embedded.brokers), needRestart);
  return { changes, needRestart };
}
