import type { AdminState, Backend, BackendState } from '../plugin.ts';
import { isWeight, WEIGHT_MAX, WEIGHT_MIN } from './weight.ts';

export type HealthCheckType = 'none' | 'tcp' | 'mqtt';

export interface BackendDefinition {
  readonly id: string;
  readonly host: string;
  readonly port: number;
  readonly weight: number;
  /** The operator's state: `ready`, `drain` or `maint` (health is tracked separately). */
  readonly state: AdminState;
  readonly sendProxy: 'none' | 'v1' | 'v2';
  /** Most live connections at once; 0 means no limit (HAProxy server maxconn). */
  readonly maxconn?: number;
  /** Overrides `timeouts.connect` for this backend. */
  readonly connectTimeoutMs?: number;
  /** Overrides `healthCheck.type` for this backend. */
  readonly check?: HealthCheckType;
  /** The broker's own WebSocket endpoint is at `address` on this path: WebSocket clients pass through. */
  readonly websocketPath?: string | undefined;
  /** Where it came from: `static` (the configuration's `backends`, the default) or a provider's label. */
  readonly source?: string;
  /** What its provider said about it. */
  readonly metadata?: Readonly<Record<string, string>>;
  /** Offered only when no other backend can take the connection (HAProxy's `backup`; an SRV record of a higher priority). */
  readonly backup?: boolean;
}

/** How `BackendPool.apply` treats what it adds. */
export interface ApplyOptions {
  /**
   * True for a backend that must pass its health checks before it takes clients (one a provider
   * discovered at runtime): it is added down, and the health checker brings it up after `rise` passes.
   */
  readonly startDown?: (def: BackendDefinition) => boolean;
}

const NO_METADATA: Readonly<Record<string, string>> = Object.freeze({});

/** The core's own, mutable view of a backend; plugins receive it typed as the read-only Backend. */
class LiveBackend implements Backend {
  readonly id: string;
  host: string;
  port: number;
  /** Live: strategies read it on every selection, so a weight set at runtime counts at once. */
  weight: number;
  /** The operator set the weight at runtime: a reload that leaves this backend's weight unchanged keeps it. */
  runtimeWeight = false;
  sendProxy: 'none' | 'v1' | 'v2';
  maxconn: number;
  connectTimeoutMs: number | undefined;
  websocketPath: string | undefined;
  backup: boolean;
  adminState: AdminState;
  healthy = true;
  activeConnections = 0;
  /**
   * Spliced connections of clients with a session to keep (clean session 0, MQTT 5 session expiry
   * above 0): the sessions an independent broker loses if those clients move, as a drain makes them.
   */
  persistentConnections = 0;
  /** Taken out of the configuration by a reload: offered to nobody, kept until its last connection closes. */
  removed = false;
  source: string;
  metadata: Readonly<Record<string, string>>;
  /** What the configuration said last; a reload compares with it to tell its own changes from the operator's. */
  definition: BackendDefinition;
  /** How to close each live connection, for `onMarkedDown: shutdown-sessions`. */
  readonly closers = new Set<() => void>();

  constructor(def: BackendDefinition) {
    this.id = def.id;
    this.definition = def;
    this.host = def.host;
    this.port = def.port;
    this.weight = def.weight;
    this.sendProxy = def.sendProxy;
    this.maxconn = def.maxconn ?? 0;
    this.connectTimeoutMs = def.connectTimeoutMs;
    this.websocketPath = def.websocketPath;
    this.backup = def.backup === true;
    this.adminState = def.state;
    this.source = def.source ?? 'static';
    this.metadata = def.metadata ?? NO_METADATA;
  }

  /** The weight the configuration gave; differs from `weight` after `tether backend set NAME weight N`. */
  get configWeight(): number {
    return this.definition.weight;
  }

  /** Effective state: maintenance and drain win over health; a ready backend that fails checks is down. */
  get state(): BackendState {
    return this.adminState === 'ready' && !this.healthy ? 'down' : this.adminState;
  }

  /**
   * Takes a reloaded definition. Address, PROXY version, limits and timeouts follow the
   * configuration; weight and state follow it only where the configuration itself changed them,
   * so a weight or state the operator set at runtime stays until a reload sets another.
   */
  redefine(def: BackendDefinition): string[] {
    const old = this.definition;
    const changed: string[] = [];
    const self: LiveBackend = this;
    const set = <K extends 'host' | 'port' | 'sendProxy' | 'maxconn' | 'connectTimeoutMs' | 'websocketPath' | 'backup'>(field: K, value: LiveBackend[K]): void => {
      if (self[field] === value) return;
      changed.push(`${field} ${String(self[field])} → ${String(value)}`);
      self[field] = value;
    };
    set('host', def.host);
    set('port', def.port);
    set('sendProxy', def.sendProxy);
    set('maxconn', def.maxconn ?? 0);
    set('connectTimeoutMs', def.connectTimeoutMs);
    set('websocketPath', def.websocketPath);
    set('backup', def.backup === true);
    if (def.weight !== old.weight) {
      if (def.weight !== this.weight) changed.push(`weight ${this.weight} → ${def.weight}`);
      this.weight = def.weight;
      this.runtimeWeight = false;
    }
    if (def.state !== old.state && def.state !== this.adminState) {
      changed.push(`state ${this.adminState} → ${def.state}`);
      this.adminState = def.state;
    }
    if ((def.check ?? undefined) !== (old.check ?? undefined)) changed.push(`check ${old.check ?? 'default'} → ${def.check ?? 'default'}`);
    const source = def.source ?? 'static';
    if (source !== this.source) changed.push(`source ${this.source} → ${source}`);
    this.source = source;
    this.metadata = def.metadata ?? NO_METADATA;
    this.definition = def;
    return changed;
  }

  toJSON(): Record<string, unknown> {
    const { id, host, port, weight, configWeight, sendProxy, maxconn, adminState, healthy, activeConnections, state, source, metadata } = this;
    return {
      id, host, port, weight, configWeight, sendProxy, maxconn, state, adminState, healthy, activeConnections, source,
      ...(Object.keys(metadata).length > 0 ? { metadata } : {}), ...(this.removed ? { removed: true } : {}), ...(this.backup ? { backup: true } : {}),
      ...(this.persistentConnections > 0 ? { persistentConnections: this.persistentConnections } : {}),
    };
  }
}

/** What a reload did to the backends, one line per change, for the log and the caller. */
export interface PoolChanges {
  readonly added: readonly string[];
  readonly removed: readonly string[];
  readonly changed: readonly string[];
}

/**
 * The set of backends and their live state. Strategies get the `ready` ones as a cached array,
 * rebuilt only when a state changes, so selection allocates nothing in the common case (a
 * `maxconn` limit or an excluded backend costs one filter).
 */
export class BackendPool {
  /** Configured backends in configuration order; the same array for the pool's life (plugins hold it as `ctx.backends`). */
  readonly #all: LiveBackend[];
  /** Every backend a connection may refer to: the configured ones and those a reload removed that still have connections. */
  readonly #byId = new Map<string, LiveBackend>();
  #limited = false;
  /** Ready backends that are not backups: offered first. */
  #ready: readonly Backend[] = [];
  /** Ready backups: offered only when none of #ready can take the connection. */
  #readyBackup: readonly Backend[] = [];

  constructor(definitions: readonly BackendDefinition[]) {
    this.#all = definitions.map((d) => new LiveBackend(d));
    for (const b of this.#all) this.#byId.set(b.id, b);
    this.#refresh();
  }

  /**
   * Applies a reloaded backend list in place: new backends are added (in configuration order),
   * changed ones redefined (see LiveBackend.redefine), and removed ones stop taking connections at
   * once while their live connections stay until they close. A backend that was not in the list
   * before is added down when `options.startDown` says it must pass its health checks first.
   */
  apply(definitions: readonly BackendDefinition[], options: ApplyOptions = {}): PoolChanges {
    const wanted = new Map(definitions.map((d) => [d.id, d]));
    const added: string[] = [];
    const removed: string[] = [];
    const changed: string[] = [];
    for (const backend of this.#all) {
      if (wanted.has(backend.id)) continue;
      removed.push(`${backend.id} (${backend.activeConnections} live connections stay until they close)`);
      backend.removed = true;
      if (backend.activeConnections === 0) this.#byId.delete(backend.id);
    }
    const next = definitions.map((def) => {
      const existing = this.#byId.get(def.id);
      const checkFirst = options.startDown?.(def) === true;
      const pending = checkFirst ? ' (takes clients once its health check passes)' : '';
      if (!existing) {
        added.push(`${def.id}=${def.host}:${def.port}${pending}`);
        const live = new LiveBackend(def);
        live.healthy = !checkFirst;
        return live;
      }
      if (existing.removed) {
        added.push(`${def.id}=${def.host}:${def.port} (back before its last connection closed)${pending}`);
        if (checkFirst) existing.healthy = false;
      }
      existing.removed = false;
      const fields = existing.redefine(def);
      if (fields.length > 0) changed.push(`${def.id}: ${fields.join(', ')}`);
      return existing;
    });
    this.#all.splice(0, this.#all.length, ...next);
    for (const b of this.#all) this.#byId.set(b.id, b);
    this.#refresh();
    return { added, removed, changed };
  }

  all(): readonly Backend[] {
    return this.#all;
  }

  get(id: string): Backend | undefined {
    return this.#byId.get(id);
  }

  /** Whether `id` is in the current list (not removed, even if its last connections still live). */
  listed(id: string): boolean {
    const backend = this.#byId.get(id);
    return backend !== undefined && !backend.removed;
  }

  connectTimeout(backend: Backend, fallbackMs: number): number {
    return this.#byId.get(backend.id)?.connectTimeoutMs ?? fallbackMs;
  }

  /**
   * Backends that may take a new connection: ready, under maxconn, and not already tried for it;
   * the backups only when no other backend can (down, drained, full or tried).
   */
  available(excluded?: ReadonlySet<string>): readonly Backend[] {
    const primary = this.#offer(this.#ready, excluded);
    return primary.length > 0 || this.#readyBackup.length === 0 ? primary : this.#offer(this.#readyBackup, excluded);
  }

  #offer(ready: readonly Backend[], excluded: ReadonlySet<string> | undefined): readonly Backend[] {
    const noneExcluded = !excluded || excluded.size === 0;
    if (noneExcluded && !this.#limited) return ready;
    return ready.filter((b) => (noneExcluded || !excluded.has(b.id)) && (b.maxconn === 0 || b.activeConnections < b.maxconn));
  }

  /** Why `available()` is empty, for the refusal message. */
  explainEmpty(): string {
    if (this.#ready.length === 0 && this.#readyBackup.length === 0) {
      const states = this.#all.map((b) => `${b.id} ${b.state}`).join(', ');
      return this.#all.length === 0 ? 'no backend is configured' : `no backend is ready (${states})`;
    }
    return 'every ready backend is at its maxconn limit';
  }

  /** Sets the operator's state (ready, drain, maint). Returns false for an unknown id or no change. */
  setAdminState(id: string, state: AdminState): boolean {
    const backend = this.#byId.get(id);
    if (!backend || backend.adminState === state) return false;
    backend.adminState = state;
    this.#refresh();
    return true;
  }

  /**
   * Sets a backend's weight at runtime (HAProxy `set server weight`), from WEIGHT_MIN to
   * WEIGHT_MAX like the configuration's. No array is rebuilt: the strategies read `weight` live.
   * Returns false for an unknown id; throws a RangeError for a weight out of range.
   */
  setWeight(id: string, weight: number): boolean {
    if (!isWeight(weight)) throw new RangeError(`weight must be a whole number from ${WEIGHT_MIN} to ${WEIGHT_MAX}; got ${String(weight)}`);
    const backend = this.#byId.get(id);
    if (!backend) return false;
    backend.weight = weight;
    backend.runtimeWeight = true;
    return true;
  }

  /**
   * Whether the weight was set at runtime (`tether backend set NAME weight N`). Kept until a
   * reload that sets it: a reload compares the new definition's weight with `configWeight`, and
   * keeps the runtime weight when they are equal.
   */
  weightSetAtRuntime(id: string): boolean {
    return this.#byId.get(id)?.runtimeWeight ?? false;
  }

  isHealthy(id: string): boolean {
    return this.#byId.get(id)?.healthy ?? false;
  }

  /** Sets the health-check verdict. Returns false for an unknown id or no change. */
  setHealthy(id: string, healthy: boolean): boolean {
    const backend = this.#byId.get(id);
    if (!backend || backend.healthy === healthy) return false;
    backend.healthy = healthy;
    this.#refresh();
    return true;
  }

  connectionOpened(backend: Backend): void {
    this.#live(backend).activeConnections++;
  }

  connectionClosed(backend: Backend): void {
    const live = this.#live(backend);
    live.activeConnections--;
    // A backend a reload removed is forgotten with its last connection.
    if (live.removed && live.activeConnections === 0) this.#byId.delete(live.id);
  }

  /**
   * Registers how to close one spliced connection, and whether its client has a session to keep;
   * returns the function that unregisters it.
   */
  track(backend: Backend, close: () => void, persistent = false): () => void {
    const live = this.#live(backend);
    live.closers.add(close);
    if (persistent) live.persistentConnections++;
    return () => {
      if (live.closers.delete(close) && persistent) live.persistentConnections--;
    };
  }

  /** Closes every live connection of a backend (HAProxy on-marked-down shutdown-sessions). */
  shutdownSessions(id: string): number {
    const backend = this.#byId.get(id);
    if (!backend) return 0;
    const closers = [...backend.closers];
    for (const close of closers) close();
    return closers.length;
  }

  #live(backend: Backend): LiveBackend {
    const live = this.#byId.get(backend.id);
    if (!live) throw new Error(`unknown backend ${backend.id}`);
    return live;
  }

  #refresh(): void {
    this.#limited = this.#all.some((b) => b.maxconn > 0);
    this.#ready = Object.freeze(this.#all.filter((b) => b.state === 'ready' && !b.backup));
    this.#readyBackup = Object.freeze(this.#all.filter((b) => b.state === 'ready' && b.backup));
  }
}
