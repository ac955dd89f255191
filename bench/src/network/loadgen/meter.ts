import { clockTicksPerSecond, treeCpuTime, type CpuTime } from '../proc-stat.ts';

export interface MeterReading {
  readonly elapsedMs: number;
  readonly cpuMicros: (number | null)[];
  readonly userCpuMicros: (number | null)[];
  readonly loadgenCpuMicros: number;
}

/**
 * Brackets the measured part of a command: wall time, CPU time of the watched processes with
 * their descendants (from /proc: a balancer's workers count as the balancer) and of the load generator itself (process.cpuUsage, all its threads).
 */
export class Meter {
  readonly #watch: readonly number[];
  readonly #ticks = clockTicksPerSecond();
  #t0 = 0;
  #cpu0: (CpuTime | undefined)[] = [];
  #own0: NodeJS.CpuUsage = process.cpuUsage();

  constructor(watch: readonly number[]) {
    this.#watch = watch;
  }

  start(): void {
    this.#cpu0 = this.#watch.map((pid) => treeCpuTime(pid, this.#ticks));
    this.#own0 = process.cpuUsage();
    this.#t0 = performance.now();
  }

  /** Milliseconds since start. */
  elapsed(): number {
    return performance.now() - this.#t0;
  }

  stop(): MeterReading {
    const elapsedMs = performance.now() - this.#t0;
    const own = process.cpuUsage(this.#own0);
    const deltas = this.#watch.map((pid, i) => {
      const before = this.#cpu0[i];
      const after = treeCpuTime(pid, this.#ticks);
      return before === undefined || after === undefined ? undefined : { user: after.userMicros - before.userMicros, system: after.systemMicros - before.systemMicros };
    });
    return {
      elapsedMs,
      cpuMicros: deltas.map((d) => (d ? d.user + d.system : null)),
      userCpuMicros: deltas.map((d) => (d ? d.user : null)),
      loadgenCpuMicros: own.user + own.system,
    };
  }
}
