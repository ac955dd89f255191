import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

/**
 * CPU time and resident memory of another process and its descendants, from /proc (a balancer with
 * several workers is a primary and its children: all of them are the balancer). CPU time is utime + stime of
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

/**
 * `pid` and every live descendant (children, their children, ...), from
 * /proc/PID/task/TID/children; just `pid` where the kernel does not offer that file.
 */
export function processTree(pid: number): number[] {
  const tree = [pid];
  for (let i = 0; i < tree.length && tree.length < 1_000; i++) {
    let tasks: string[];
    try {
      tasks = readdirSync(`/proc/${tree[i]}/task`);
    } catch {
      continue;
    }
    for (const tid of tasks) {
      try {
        for (const child of readFileSync(`/proc/${tree[i]}/task/${tid}/children`, 'utf8').trim().split(/\s+/)) if (child) tree.push(Number(child));
      } catch {
        // Task gone, or no children file.
      }
    }
  }
  return tree;
}

/** CPU time of `pid` and its live descendants, summed; undefined if `pid` is gone. */
export function treeCpuTime(pid: number, ticksPerSecond: number): CpuTime | undefined {
  const own = cpuTime(pid, ticksPerSecond);
  if (!own) return undefined;
  let { userMicros, systemMicros } = own;
  for (const child of processTree(pid).slice(1)) {
    const c = cpuTime(child, ticksPerSecond);
    if (c) {
      userMicros += c.userMicros;
      systemMicros += c.systemMicros;
    }
  }
  return { userMicros, systemMicros };
}

/** RSS of `pid` and its live descendants, summed, in KiB; undefined if `pid` is gone. */
export function treeRssKiB(pid: number): number | undefined {
  const own = rssKiB(pid);
  if (own === undefined) return undefined;
  return processTree(pid).slice(1).reduce((sum, child) => sum + (rssKiB(child) ?? 0), own);
}
