import type { Logger } from 'pino';
import { ClientRefusedError, describe, PluginHookError } from '../errors.ts';
import type { Backend, ConnInfo, Selection, Strategy, TableQuery, TableView } from '../plugin.ts';
import type { ChainCondition } from '../config/types.ts';
import type { Named } from '../plugins/plugin-loader.ts';

export interface Choice {
  readonly backend: Backend;
  /** Name of the strategy that answered (or, after a `confirm` redirect, the one that redirected). */
  readonly strategy: string;
  /** The backend is where the client's key was seen before (Selection.remembered). */
  readonly remembered: boolean;
}

/** A table edit by the operator, with how many tables held the key or entries. */
export interface TableEditResult {
  /** Strategies that keep a table and took the edit. */
  readonly tables: number;
  /** Entries changed (set: tables that stored it; delete: tables that had the key; clear: entries removed). */
  readonly changed: number;
}

/** A refusal's reason becomes a counter name and a metrics label: short snake_case only. */
const REASON = /^[a-z][a-z0-9_]{0,39}$/;

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
    const { strategies } = this;
    for (let i = 0; i < strategies.length; i++) {
      const { name, product, when } = strategies[i]!;
      if (!applies(when, conn)) continue;
      const result = await this.#ask(name, 'select', backends, () => product.select(conn, backends));
      if (result.kind === 'selected') {
        const choice = { backend: result.backend, strategy: name, remembered: result.remembered === true };
        return i === 0 ? choice : this.#confirm(conn, choice, backends, i);
      }
      if (result.kind === 'refuse') throw new ClientRefusedError(name, result.reason, result.detail, conn.protocolVersion);
    }
    return undefined;
  }

  /**
   * The strategies before the one that chose may take the choice over (Strategy.confirm): the
   * first that answers with a selection wins, and later ones are not asked.
   */
  async #confirm(conn: ConnInfo, choice: Choice, backends: readonly Backend[], chosenAt: number): Promise<Choice> {
    for (let i = 0; i < chosenAt; i++) {
      const { name, product, when } = this.strategies[i]!;
      if (!product.confirm || !applies(when, conn)) continue;
      const result = await this.#ask(name, 'confirm', backends, () => product.confirm!(conn, choice.backend, backends));
      if (result?.kind === 'selected') return { backend: result.backend, strategy: name, remembered: result.remembered === true };
    }
    return choice;
  }

  /** Calls one selection hook; a throw, or a backend that was not offered, is that plugin's fault. */
  async #ask<T extends Selection | undefined>(name: string, hook: 'select' | 'confirm', backends: readonly Backend[], call: () => T | Promise<T>): Promise<T> {
    let result: T;
    try {
      const answer = call();
      result = answer instanceof Promise ? await answer : answer;
    } catch (err) {
      throw new PluginHookError(name, hook, err);
    }
    if (result?.kind === 'selected' && !backends.includes(result.backend)) {
      throw new PluginHookError(name, hook, new Error(`chose backend ${result.backend.id}, which was not offered`));
    }
    if (result?.kind === 'refuse' && (hook !== 'select' || !REASON.test(result.reason))) {
      const why = hook !== 'select' ? 'refused from confirm (only select may refuse)' : `refused with reason ${JSON.stringify(result.reason)} (snake_case, at most 40 characters)`;
      throw new PluginHookError(name, hook, new Error(why));
    }
    return result;
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

  /** Every strategy's table (those that keep one), in chain order. */
  async tables(query: TableQuery = {}): Promise<TableView[]> {
    const views: TableView[] = [];
    for (const { name, product } of this.strategies) {
      if (!product.table) continue;
      try {
        views.push(await product.table(query.limit, query));
      } catch (err) {
        throw new PluginHookError(name, 'table', err);
      }
    }
    return views;
  }

  /** Points `key` at `backend` in every table (HAProxy `set table`). */
  setEntry(key: string, backend: Backend): Promise<TableEditResult> {
    return this.#edit('setEntry', async (s) => (s.setEntry ? (await s.setEntry(key, backend), 1) : undefined));
  }

  /** Forgets `key` in every table. */
  deleteEntry(key: string): Promise<TableEditResult> {
    return this.#edit('deleteEntry', async (s) => (s.deleteEntry ? Number(await s.deleteEntry(key)) : undefined));
  }

  /** Forgets every entry, or those on `backendId`, in every table (HAProxy `clear table`). */
  clearEntries(backendId?: string): Promise<TableEditResult> {
    return this.#edit('clearEntries', async (s) => (s.clearEntries ? s.clearEntries(backendId) : undefined));
  }

  async #edit(hook: string, apply: (strategy: Strategy) => Promise<number | undefined>): Promise<TableEditResult> {
    let tables = 0;
    let changed = 0;
    for (const { name, product } of this.strategies) {
      let n: number | undefined;
      try {
        n = await apply(product);
      } catch (err) {
        throw new PluginHookError(name, hook, err);
      }
      if (n === undefined) continue;
      tables++;
      changed += n;
    }
    return { tables, changed };
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
