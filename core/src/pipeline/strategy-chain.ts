import type { Logger } from 'pino';
import { describe, PluginHookError } from '../errors.ts';
import type { Backend, ConnInfo, Strategy, TableView } from '../plugin.ts';
import type { ChainCondition } from '../config/types.ts';
import type { Named } from '../plugins/plugin-loader.ts';

export interface Choice {
  readonly backend: Backend;
  /** Name of the strategy that answered. */
  readonly strategy: string;
}

/**
 * Session-aware branching: a strategy configured `when: persistent` neither chooses for nor
 * remembers clients that have no session to lose, and `when: clean` the reverse.
 */
function applies(when: ChainCondition | undefined, conn: ConnInfo): boolean {
  return when === undefined || when === 'always' || (when === 'persistent') === conn.persistentSession;
}

/**
 * The ordered strategy chain (Rollup's hookFirst): the first strategy that does not abstain wins.
 * Notifications (`onSpliced`, `onClosed`) go to every strategy; one that throws is logged and
 * does not stop the others.
 */
export class StrategyChain {
  readonly strategies: readonly Named<Strategy>[];
  readonly #log: Logger;

  constructor(strategies: readonly Named<Strategy>[], log: Logger) {
    this.strategies = strategies;
    this.#log = log;
  }

  async select(conn: ConnInfo, backends: readonly Backend[]): Promise<Choice | undefined> {
    if (backends.length === 0) return undefined;
    for (const { name, product, when } of this.strategies) {
      if (!applies(when, conn)) continue;
      let result;
      try {
        result = product.select(conn, backends);
        if (result instanceof Promise) result = await result;
      } catch (err) {
        throw new PluginHookError(name, 'select', err);
      }
      if (result.kind === 'selected') {
        if (!backends.includes(result.backend)) {
          throw new PluginHookError(name, 'select', new Error(`chose backend ${result.backend.id}, which was not offered`));
        }
        return { backend: result.backend, strategy: name };
      }
    }
    return undefined;
  }

  spliced(conn: ConnInfo, backend: Backend): void {
    for (const { name, product, when } of this.strategies) {
      if (!applies(when, conn)) continue;
      try {
        product.onSpliced?.(conn, backend);
      } catch (err) {
        this.#log.warn({ plugin: name, hook: 'onSpliced', err: describe(err) }, 'strategy hook failed');
      }
    }
  }

  closed(conn: ConnInfo, backend: Backend): void {
    for (const { name, product, when } of this.strategies) {
      if (!applies(when, conn)) continue;
      try {
        product.onClosed?.(conn, backend);
      } catch (err) {
        this.#log.warn({ plugin: name, hook: 'onClosed', err: describe(err) }, 'strategy hook failed');
      }
    }
  }

  tables(limit?: number): TableView[] {
    return this.strategies.flatMap(({ product }) => (product.table ? [product.table(limit)] : []));
  }

  async close(): Promise<void> {
    for (const { name, product } of this.strategies) {
      try {
        await product.close?.();
      } catch (err) {
        this.#log.warn({ plugin: name, hook: 'close', err: describe(err) }, 'strategy close failed');
      }
    }
  }
}
