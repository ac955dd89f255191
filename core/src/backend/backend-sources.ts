import type { Logger } from 'pino';
import { describe } from '../errors.ts';
import { formatHostPort, parseHostPort } from '../net/address.ts';
import type { Named } from '../plugins/plugin-loader.ts';
import type { ProvidedBackend, Provider } from '../plugin.ts';
import type { Stats } from '../stats.ts';
import type { ApplyOptions, BackendDefinition, BackendPool, PoolChanges } from './backend-pool.ts';
import { isWeight, WEIGHT_MAX, WEIGHT_MIN } from './weight.ts';

/** The source of the configuration's own `backends`. */
export const STATIC_SOURCE = 'static';

interface Attached {
  readonly label: string;
  /** The plugin's name: its counters are `<plugin>_backends_added` and so on. */
  readonly plugin: string;
  definitions: readonly BackendDefinition[];
}

export interface BackendSourcesDeps {
  readonly pool: BackendPool;
  readonly log: Logger;
  readonly stats: Stats;
  /** Read on each apply: whether a backend added now must pass its health checks first. */
  readonly startDown: ApplyOptions['startDown'];
  /** Called after a provider's change reached the pool (the health checker starts on new backends). */
  readonly applied?: () => void;
}

/**
 * Every place backends come from, merged into the one pool: the configuration's static list
 * (source `static`) and each provider's latest set. Every change goes through `BackendPool.apply`,
 * the same path as a configuration reload, so runtime weights and states are kept and a removed
 * backend keeps its live connections. A name given by two sources goes to the first (static,
 * then providers in configuration order); the other is left out with a warning.
 */
export class BackendSources {
  readonly #deps: BackendSourcesDeps;
  #static: readonly BackendDefinition[] = [];
  /** Products in configuration order; a Map keeps insertion order and tells a product already started. */
  #providers = new Map<Provider, Attached>();
  /** While attaching, emissions only record their set: one apply follows. */
  #attaching = false;

  constructor(deps: BackendSourcesDeps) {
    this.#deps = deps;
  }

  /** The configuration's backends (at start, and on every reload). Applied by the next `apply`. */
  setStatic(definitions: readonly BackendDefinition[]): void {
    this.#static = definitions;
  }

  /**
   * The providers of the configuration in force: new products are started (each gets its `emit`),
   * those no longer listed stop counting (a reload retired or replaced them). Applied by the next `apply`.
   */
  attach(providers: readonly Named<Provider>[]): void {
    const next = new Map<Provider, Attached>();
    const started: [Provider, Attached][] = [];
    for (const { name, product } of providers) {
      const kept = this.#providers.get(product);
      if (kept) {
        next.set(product, kept);
        continue;
      }
      const attached: Attached = { label: product.label ?? name, plugin: name, definitions: [] };
      next.set(product, attached);
      started.push([product, attached]);
    }
    this.#providers = next;
    this.#attaching = true;
    try {
      for (const [product, attached] of started) {
        try {
          product.start((backends) => this.#emitted(product, attached, backends));
        } catch (err) {
          this.#deps.log.error({ provider: attached.label, err: describe(err) }, 'provider failed to start; its backends stay empty');
        }
      }
    } finally {
      this.#attaching = false;
    }
  }

  /** Applies the merged list to the pool. */
  apply(): PoolChanges {
    const merged: BackendDefinition[] = [...this.#static];
    const taken = new Map(merged.map((d) => [d.id, STATIC_SOURCE]));
    for (const attached of this.#providers.values()) {
      for (const def of attached.definitions) {
        const owner = taken.get(def.id);
        if (owner !== undefined) {
          this.#deps.log.warn({ provider: attached.label, backend: def.id, owner }, 'backend name already given by another source; this one is left out');
          continue;
        }
        taken.set(def.id, attached.label);
        merged.push(def);
      }
    }
    return this.#deps.pool.apply(merged, { startDown: this.#deps.startDown });
  }

  #emitted(product: Provider, attached: Attached, backends: readonly ProvidedBackend[]): void {
    // A retired provider's late emission (a timer that fired while it closed) changes nothing.
    if (this.#providers.get(product) !== attached) return;
    attached.definitions = this.#definitions(attached, backends);
    if (this.#attaching) return;
    const changes = this.apply();
    this.#report(attached, changes);
    this.#deps.applied?.();
  }

  /** One log line per change that did something, and a counter per added, removed and changed backend. */
  #report(attached: Attached, changes: PoolChanges): void {
    const { added, removed, changed } = changes;
    if (added.length + removed.length + changed.length === 0) return;
    const scope = this.#deps.stats.scope(attached.plugin.replace(/[^a-zA-Z0-9]+/g, '_'));
    if (added.length) scope.inc('backends_added', added.length);
    if (removed.length) scope.inc('backends_removed', removed.length);
    if (changed.length) scope.inc('backends_changed', changed.length);
    this.#deps.log.info({ provider: attached.label, added, removed, changed, backends: this.#deps.pool.all().length }, 'backends changed');
  }

  /** A provider's set as pool definitions; a bad entry is left out with a warning, never thrown at the provider. */
  #definitions(attached: Attached, backends: readonly ProvidedBackend[]): BackendDefinition[] {
    const out: BackendDefinition[] = [];
    const names = new Set<string>();
    for (const b of backends) {
      const problem = invalid(b, names);
      if (problem) {
        this.#deps.log.warn({ provider: attached.label, backend: b?.name, problem }, 'provider gave a bad backend; left out');
        continue;
      }
      names.add(b.name);
      const { host, port } = parseHostPort(b.address);
      out.push({
        id: b.name, host, port, weight: b.weight ?? 1, state: 'ready', sendProxy: 'none', maxconn: 0,
        source: attached.label, metadata: { ...(b.metadata ?? {}) }, ...(b.backup === true ? { backup: true } : {}),
      });
    }
    return out;
  }
}

function invalid(b: ProvidedBackend, names: ReadonlySet<string>): string | undefined {
  if (!b || typeof b.name !== 'string' || b.name.length === 0) return 'name must be a non-empty string';
  if (names.has(b.name)) return `name "${b.name}" is given twice`;
  if (b.weight !== undefined && !isWeight(b.weight)) return `weight must be an integer from ${WEIGHT_MIN} to ${WEIGHT_MAX}`;
  try {
    if (typeof b.address !== 'string') return 'address must be a "host:port" string';
    formatHostPort(parseHostPort(b.address));
  } catch (err) {
    return `address ${describe(err)}`;
  }
  return undefined;
}
