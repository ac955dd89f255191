import type { ChainEntry } from '@tether/core';

/**
 * A scenario, validated and normalized: every duration in milliseconds, every default filled in,
 * events sorted by time. This is what the simulator reads; `load-scenario.ts` makes it from a
 * YAML or JSON file and `timeline.ts` turns its events into backend state changes.
 */
export interface Scenario {
  readonly name: string;
  readonly description: string;
  /** Where the scenario came from (a file path), for the report. */
  readonly source: string;
  readonly seed: number;
  readonly durationMs: number;
  readonly stepMs: number;
  /** durationMs / stepMs: the simulator advances the clock one step at a time. */
  readonly steps: number;
  /** Backends present at the start, in order. */
  readonly backends: readonly ScenarioBackend[];
  readonly clients: ClientsSpec;
  /** How long a broker keeps a persistent session after its client disconnects (MQTT session expiry). */
  readonly sessionExpiryMs: number;
  readonly churn: ChurnSpec;
  readonly events: readonly ScenarioEvent[];
  /** Chains named in the file; undefined means the defaults (or those given on the command line). */
  readonly chains: readonly ChainSpec[] | undefined;
  /** Key extractor chain, as in a Tether config (default: client-id). */
  readonly key: readonly ChainEntry[];
  /** Plugin modules to load: absolute paths (resolved against the scenario file) or package names. */
  readonly plugins: readonly string[];
}

export interface ScenarioBackend {
  readonly name: string;
  /** Integer 1..256, as in a Tether config. */
  readonly weight: number;
}

export type Distribution = 'uniform' | 'zipf';

export interface ClientsSpec {
  readonly count: number;
  /** How likely each client is to be the next whose connection drops. */
  readonly distribution: Distribution;
  /** Zipf exponent (ignored for uniform). */
  readonly exponent: number;
  /** Share of clients (0..1) that ask for a persistent session (clean session off). */
  readonly persistent: number;
  /** When set, client user names are `tenant:client-id`, tenants taken in turn (for tenant-aware strategies). */
  readonly tenants: readonly string[];
}

export interface ChurnSpec {
  /** Connection drops per client per hour (0.5: on average each client drops every two hours). */
  readonly ratePerHour: number;
  /** Mean time a dropped client stays offline before reconnecting (exponentially distributed). */
  readonly reconnectDelayMs: number;
}

/** One strategy chain to compare: a `select` list exactly as in a Tether config. */
export interface ChainSpec {
  readonly name: string;
  readonly select: readonly ChainEntry[];
}

interface EventBase {
  /** Milliseconds from the start of the scenario. */
  readonly at: number;
}

/** A new backend joins (it was not configured before). */
export interface AddEvent extends EventBase {
  readonly type: 'add';
  readonly backend: string;
  readonly weight: number;
}
/** A backend leaves for good: its connections drop and the sessions it held are lost. */
export interface RemoveEvent extends EventBase {
  readonly type: 'remove';
  readonly backend: string;
}
/** A backend goes down (its connections drop) and comes back after `downtimeMs`, sessions intact. */
export interface RestartEvent extends EventBase {
  readonly type: 'restart';
  readonly backend: string;
  readonly downtimeMs: number;
}
/** A backend takes no new connections but keeps its live ones; back to ready after `forMs` if set. */
export interface DrainEvent extends EventBase {
  readonly type: 'drain';
  readonly backend: string;
  readonly forMs: number | undefined;
}
/** Every backend present restarts in turn, one every `intervalMs`, each down for `downtimeMs`. */
export interface RollingRestartEvent extends EventBase {
  readonly type: 'rolling-restart';
  readonly downtimeMs: number;
  readonly intervalMs: number;
}
/** A backend goes down for `downMs` and up for `upMs`, `count` times. */
export interface FlapEvent extends EventBase {
  readonly type: 'flap';
  readonly backend: string;
  readonly downMs: number;
  readonly upMs: number;
  readonly count: number;
}

export type ScenarioEvent = AddEvent | RemoveEvent | RestartEvent | DrainEvent | RollingRestartEvent | FlapEvent;
export type EventType = ScenarioEvent['type'];
export const EVENT_TYPES: readonly EventType[] = ['add', 'remove', 'restart', 'drain', 'rolling-restart', 'flap'];

/** A short human label, e.g. `restart emqx2` or `rolling-restart`, used in tables and charts. */
export function eventLabel(event: ScenarioEvent): string {
  return 'backend' in event ? `${event.type} ${event.backend}` : event.type;
}
