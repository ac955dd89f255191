import type { Backend, BackendState } from '../plugin.ts';

export interface BackendDefinition {
  readonly id: string;
  readonly host: string;
  readonly port: number;
  readonly weight: number;
  readonly state: BackendState;
  readonly sendProxy: 'none' | 'v1' | 'v2';
}

/** The core's own, mutable view of a backend; plugins receive it typed as the read-only Backend. */
class LiveBackend implements Backend {
  readonly id: string;
  readonly host: string;
  readonly port: number;
  readonly weight: number;
  readonly sendProxy: 'none' | 'v1' | 'v2';
  state: BackendState;
  activeConnections = 0;
  constructor(def: BackendDefinition) {
    this.id = def.id;
    this.host = def.host;
    this.port = def.port;
    this.weight = def.weight;
    this.sendProxy = def.sendProxy;
    this.state = def.state;
  }
}

/**
 * The set of backends and their live state. Strategies get the `ready` ones as a cached array,
 * rebuilt only when a state changes, so selection allocates nothing in the common case.
 */
export class BackendPool {
  readonly #all: readonly LiveBackend[];
  readonly #byId: ReadonlyMap<string, LiveBackend>;
  #ready: readonly Backend[] = [];

  constructor(definitions: readonly BackendDefinition[]) {
    this.#all = definitions.map((d) => new LiveBackend(d));
    this.#byId = new Map(this.#all.map((b) => [b.id, b]));
    this.#refresh();
  }

  all(): readonly Backend[] {
    return this.#all;
  }

  get(id: string): Backend | undefined {
    return this.#byId.get(id);
  }

  /** Backends that may take a new connection, minus those already tried for this one. */
  available(excluded?: ReadonlySet<string>): readonly Backend[] {
    if (!excluded || excluded.size === 0) return this.#ready;
    return this.#ready.filter((b) => !excluded.has(b.id));
  }

  setState(id: string, state: BackendState): boolean {
    const backend = this.#byId.get(id);
    if (!backend || backend.state === state) return false;
    backend.state = state;
    this.#refresh();
    return true;
  }

  connectionOpened(backend: Backend): void {
    this.#live(backend).activeConnections++;
  }

  connectionClosed(backend: Backend): void {
    this.#live(backend).activeConnections--;
  }

  #live(backend: Backend): LiveBackend {
    const live = this.#byId.get(backend.id);
    if (!live) throw new Error(`unknown backend ${backend.id}`);
    return live;
  }

  #refresh(): void {
    this.#ready = Object.freeze(this.#all.filter((b) => b.state === 'ready'));
  }
}
