import { createLogger, parseDuration, Stats, validateOptions, type Backend, type ConnInfo, type Selection, type Strategy, type TableView } from '@tether/core';
import { testBackend, testConn } from '@tether/core/testing';
import type { pino } from 'pino';
import stickTable from '../../src/index.ts';
import { createSharedStickTable } from '../../src/redis/shared-stick-table.ts';
import { parseStore, type RedisStoreSettings } from '../../src/store-options.ts';

/**
 * A stick table on a real Redis, as Tether builds it (options validated by the plugin's schema,
 * create() with a context), plus what a test reads: its counters, its log lines, its table view.
 */
export interface TestTable {
  readonly strategy: Strategy;
  readonly stats: Stats;
  readonly logs: Record<string, unknown>[];
  count(name: string): number;
  view(query?: { limit?: number; cursor?: string; key?: string }): Promise<TableView>;
  close(): Promise<void>;
}

export const A = testBackend('a');
export const B = testBackend('b');
export const C = testBackend('c');

let nextConn = 1;
export function conn(key: string, options: { dryRun?: boolean } = {}): ConnInfo {
  return testConn({ id: nextConn++, key, keySource: 'client-id', connect: { clientId: key, clean: false }, ...(options.dryRun ? { dryRun: true } : {}) });
}

export async function openTable(store: Record<string, unknown>, options: Record<string, unknown> = {}, testing: { claimWith?: 'auto' | 'script'; now?: () => number } = {}): Promise<TestTable> {
  const stats = new Stats();
  const logs: Record<string, unknown>[] = [];
  const log = createLogger('debug', { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) } as pino.DestinationStream);
  const lifetime = new AbortController();
  const ctx = { log, stats: stats.scope('stick_table'), now: testing.now ?? Date.now, signal: lifetime.signal, backends: [] };
  const validated = validateOptions(stickTable, { ...options, store }) as { size: number; expire: string; keyLength: number; mode: 'learn' | 'match-only'; store: unknown };
  let strategy: Strategy;
  if (testing.claimWith) {
    const settings = parseStore(validated.store, {}) as RedisStoreSettings;
    strategy = await createSharedStickTable(ctx, { size: validated.size, expireMs: parseDuration(validated.expire)!, keyLength: validated.keyLength, mode: validated.mode, store: settings, storedAttribute: 'stick-table:stored:test', claimWith: testing.claimWith });
  } else strategy = await stickTable.create(ctx, validated as never);
  return {
    strategy,
    stats,
    logs,
    count: (name) => stats.get(`stick_table_${name}`),
    view: async (query = {}) => strategy.table!(query.limit, query),
    close: async () => {
      await strategy.close?.();
      lifetime.abort();
    },
  };
}

export interface Routed {
  readonly backend: Backend;
  /** Which step decided: the cache (select), Redis (confirm), or the chain's own choice. */
  readonly by: 'cache' | 'redis' | 'chain';
  readonly remembered: boolean;
}

/**
 * One connection through a two-strategy chain [this table, a chain that would choose `proposal`],
 * the way StrategyChain drives it: select; on abstain the next strategy proposes and confirm may
 * redirect; then the connection is spliced (the table learns).
 */
export async function route(strategy: Strategy, c: ConnInfo, offered: readonly Backend[], proposal: Backend, options: { splice?: boolean } = {}): Promise<Routed> {
  const first: Selection = await strategy.select(c, offered);
  let routed: Routed;
  if (first.kind === 'selected') routed = { backend: first.backend, by: 'cache', remembered: first.remembered === true };
  else {
    const confirmed = await strategy.confirm?.(c, proposal, offered);
    routed = confirmed?.kind === 'selected'
      ? { backend: confirmed.backend, by: 'redis', remembered: confirmed.remembered === true }
      : { backend: proposal, by: 'chain', remembered: false };
  }
  if (options.splice !== false && !c.dryRun) strategy.onSpliced?.(c, routed.backend);
  return routed;
}
