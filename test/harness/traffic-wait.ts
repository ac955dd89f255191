import { setTimeout as delay } from 'node:timers/promises';

/**
 * Bounded waiting for the session and traffic tests. Tests await events where one exists; these
 * are for the two cases where none does: a promise that must not hang the suite (withTimeout), and
 * a condition that becomes true as a side effect elsewhere, such as a log line (waitUntil).
 */

/** Rejects with a message naming `what` when `promise` has not settled after `ms`. */
export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export interface UntilOptions {
  /** Most checks made before giving up (default 200). */
  readonly tries?: number;
  /** Pause between two checks in ms (default 25): with the default tries, at most about 5 s. */
  readonly intervalMs?: number;
}

/**
 * Polls `check` until it returns something other than undefined/false, bounded in count and time
 * (tries × interval), and returns that value; throws naming `what` otherwise.
 */
export async function waitUntil<T>(what: string, check: () => T | undefined | false | Promise<T | undefined | false>, options: UntilOptions = {}): Promise<T> {
  const tries = options.tries ?? 200;
  const intervalMs = options.intervalMs ?? 25;
  for (let i = 0; i < tries; i++) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    await delay(intervalMs);
  }
  throw new Error(`gave up after ${tries} checks (${tries * intervalMs} ms) waiting for ${what}`);
}
