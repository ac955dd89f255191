import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/**
 * CPU time and resident memory of another process, from /proc. CPU time is utime + stime of
 * /proc/PID/stat: every thread of the process (Node's libuv and GC threads included), in clock
 * ticks of 1/CLK_TCK s (10 ms on most Linux systems), so a phase must last long enough (hundreds
 * of ms of CPU) for the per-operation figures to be meaningful.
 */

let clockTicks: number | undefined;

/** Clock ticks per second (getconf CLK_TCK), 100 if it cannot be read. */
export function clockTicksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

export interface CpuTime {
  /** In user space (for Node: JavaScript, V8, libuv). */
  readonly userMicros: number;
  /** In the kernel on the process's behalf (system calls: the TCP work itself). */
  readonly systemMicros: number;
}

/** CPU time used so far by process `pid`, in microseconds; undefined if it is gone. */
export function cpuTime(pid: number, ticksPerSecond: number): CpuTime | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) is in parentheses and may contain spaces: count after its end.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // Fields 14 and 15 (utime, stime) are at 11 and 12 after the state field (field 3).
  const user = Number(fields[11]);
  const system = Number(fields[12]);
  if (!Number.isFinite(user) || !Number.isFinite(system)) return undefined;
  return { userMicros: (user * 1e6) / ticksPerSecond, systemMicros: (system * 1e6) / ticksPerSecond };
}

/** Resident set size of process `pid` in KiB (VmRSS); undefined if it is gone. */
export function rssKiB(pid: number): number | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return undefined;
  }
  const match = /^VmRSS:\s+(\d+) kB/m.exec(text);
  return match ? Number(match[1]) : undefined;
}
