import type { Logger } from 'pino';
import type { TetherConfig } from '../config/types.ts';
import type { Stats } from '../stats.ts';
import type { BackendPool, HealthCheckType } from './backend-pool.ts';
import { probe, type ProbeSettings } from './health-probe.ts';

export interface HealthCheckSettings extends Omit<ProbeSettings, 'type'> {
  readonly type: HealthCheckType;
  readonly intervalMs: number;
  /** Consecutive passes that bring a down backend up (HAProxy rise). */
  readonly rise: number;
  /** Consecutive failures that take an up backend down (HAProxy fall). */
  readonly fall: number;
  /** `shutdown-sessions` closes a backend's live connections when it is marked down. */
  readonly onMarkedDown: 'keep' | 'shutdown-sessions';
}

/** The checker for `config`: its settings, and each backend's own check type where it overrides them. */
export function healthCheckerFor(pool: BackendPool, config: TetherConfig, log: Logger, stats: Stats): HealthChecker {
  // A broker's WebSocket endpoint cannot answer an MQTT CONNECT on raw TCP: the mqtt check becomes tcp there.
  const checkType = new Map(config.backends.map((b) => {
    const type = b.check ?? config.healthCheck.type;
    return [b.id, b.websocketPath !== undefined && type === 'mqtt' ? 'tcp' : type];
  }));
  // A backend a provider brings has no `check` of its own: the configuration's type applies.
  return new HealthChecker(pool, config.healthCheck, (id) => checkType.get(id) ?? config.healthCheck.type, log.child({ component: 'health' }), stats);
}

/** Whether a backend of `def` must pass its health checks before it takes clients under `config`. */
export function checkedFirst(config: TetherConfig, def: { readonly check?: HealthCheckType }): boolean {
  return (def.check ?? config.healthCheck.type) !== 'none';
}

/**
 * Checks every backend on its own timer, like HAProxy's `check inter I rise R fall F`. Backends
 * start up; `fall` failures in a row mark one down (strategies stop seeing it), `rise` passes in a
 * row bring it back. Each change is logged once, with the reason, and counted.
 */
export class HealthChecker {
  readonly #pool: BackendPool;
  readonly #settings: HealthCheckSettings;
  readonly #typeFor: (id: string) => HealthCheckType;
  readonly #log: Logger;
  readonly #stats: Stats;
  #onResult: ((id: string, ok: boolean) => void) | undefined;
  readonly #timers = new Map<string, NodeJS.Timeout>();
  #stopped = false;

  constructor(pool: BackendPool, settings: HealthCheckSettings, typeFor: (id: string) => HealthCheckType, log: Logger, stats: Stats) {
    this.#pool = pool;
    this.#settings = settings;
    this.#typeFor = typeFor;
    this.#log = log;
    this.#stats = stats;
  }

  /** `listener` hears every check's result from now on (the metrics count them by backend). */
  observe(listener: (id: string, ok: boolean) => void): void {
    this.#onResult = listener;
  }

  start(): void {
    this.sync();
  }

  /** Starts checking the listed backends not checked yet (a provider added them); removed ones stop on their next turn. */
  sync(): void {
    if (this.#stopped) return;
    for (const backend of this.#pool.all()) {
      if (!this.#timers.has(backend.id) && this.#typeFor(backend.id) !== 'none') this.#schedule(backend.id, { passes: 0, failures: 0 }, 0);
    }
  }

  stop(): void {
    this.#stopped = true;
    for (const timer of this.#timers.values()) clearTimeout(timer);
    this.#timers.clear();
  }

  #schedule(id: string, streak: { passes: number; failures: number }, delayMs: number): void {
    if (this.#stopped) return;
    this.#timers.set(id, setTimeout(() => void this.#check(id, streak), delayMs));
  }

  async #check(id: string, streak: { passes: number; failures: number }): Promise<void> {
    const backend = this.#pool.get(id);
    if (!backend || this.#stopped || !this.#pool.listed(id)) {
      // Gone from the list: a later sync starts it again if it comes back.
      this.#timers.delete(id);
      return;
    }
    const type = this.#typeFor(id) as 'tcp' | 'mqtt';
    const result = await probe(backend, { ...this.#settings, type });
    if (this.#stopped) return;
    const healthy = this.#pool.isHealthy(id);
    this.#onResult?.(id, result.ok);
    if (result.ok) {
      streak.failures = 0;
      streak.passes++;
      if (!healthy && streak.passes >= this.#settings.rise) this.#mark(id, true, `${streak.passes} ${type} checks passed`);
    } else {
      streak.passes = 0;
      streak.failures++;
      this.#stats.inc('health_check_failures');
      if (healthy && streak.failures >= this.#settings.fall) this.#mark(id, false, `${result.reason} (${streak.failures} checks failed in a row)`);
    }
    this.#schedule(id, streak, this.#settings.intervalMs);
  }

  #mark(id: string, healthy: boolean, reason: string): void {
    if (!this.#pool.setHealthy(id, healthy)) return;
    this.#stats.inc(healthy ? 'backends_marked_up' : 'backends_marked_down');
    if (healthy) {
      this.#log.info({ backend: id, reason }, 'backend is UP');
      return;
    }
    const closed = this.#settings.onMarkedDown === 'shutdown-sessions' ? this.#pool.shutdownSessions(id) : 0;
    this.#log.warn({ backend: id, reason, closedConnections: closed }, 'backend is DOWN');
  }
}
