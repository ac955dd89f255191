import { clockTicksPerSecond, cpuMicros } from '../proc-stat.ts';

export interface MeterReading {
  readonly elapsedMs: number;
  readonly cpuMicros: (number | null)[];
  readonly loadgenCpuMicros: number;
}

/**
 * Brackets the measured part of a command: wall time, CPU time of the watched processes (from
 * /proc) and of the load generator itself (process.cpuUsage, all its threads).
 */
export class Meter {
  readonly #watch: readonly number[];
  readonly #ticks = clockTicksPerSecond();
  #t0 = 0;
  #cpu0: (number | undefined)[] = [];
  #own0: NodeJS.CpuUsage = process.cpuUsage();

  constructor(watch: readonly number[]) {
    this.#watch = watch;
  }

  start(): void {
    this.#cpu0 = this.#watch.map((pid) => cpuMicros(pid, this.#ticks));
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
    const cpu = this.#watch.map((pid, i) => {
      const before = this.#cpu0[i];
      const after = cpuMicros(pid, this.#ticks);
      return before === undefined || after === undefined ? null : after - before;
    });
    return { elapsedMs, cpuMicros: cpu, loadgenCpuMicros: own.user + own.system };
  }
}
