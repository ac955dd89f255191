/**
 * Waiting without sleeping: tests wait for an event or poll a condition, always with a bound, so a
 * missing event fails the test with a clear message instead of hanging it until Vitest's timeout.
 */

/** Generous default: a loaded 2-core CI machine can stall for a second or two. */
export const DEFAULT_WAIT_MS = 10_000;

export interface WaitOptions {
  /** What is awaited, for the failure message (a function is called only if the wait fails). */
  readonly what: string | (() => string);
  readonly timeoutMs?: number;
  readonly intervalMs?: number;
}

/**
 * Polls `condition` until it returns a truthy value (returned) or the bound is reached (throws).
 * The bound is both a number of tries and the time they take, so it holds even if timers lag.
 */
export async function waitFor<T>(condition: () => T | undefined | null | false | Promise<T | undefined | null | false>, options: WaitOptions): Promise<T> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_WAIT_MS;
  const intervalMs = options.intervalMs ?? 10;
  const maxTries = Math.ceil(timeoutMs / intervalMs) + 1;
  const deadline = Date.now() + timeoutMs;
  for (let i = 0; i < maxTries; i++) {
    const value = await condition();
    if (value) return value;
    if (Date.now() > deadline) break;
    await delay(intervalMs);
  }
  const what = typeof options.what === 'function' ? options.what() : options.what;
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

/** Rejects if `promise` has not settled within `timeoutMs`; the timer never outlives the promise. */
export async function within<T>(promise: Promise<T>, what: string, timeoutMs = DEFAULT_WAIT_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)), timeoutMs);
  });
  try {
    return await Promise.race([promise, expired]);
  } finally {
    clearTimeout(timer);
  }
}

/** A plain timer, for pacing traffic (never for waiting on something to happen). */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Log lines (parsed pino objects) whose fields all equal `fields`. */
export function logLines(logs: readonly Record<string, unknown>[], fields: Record<string, unknown>): Record<string, unknown>[] {
  return logs.filter((line) => Object.entries(fields).every(([k, v]) => line[k] === v));
}

/** Waits until at least `count` log lines match `fields` and returns the last match. */
export async function waitForLog(logs: readonly Record<string, unknown>[], fields: Record<string, unknown>, count = 1): Promise<Record<string, unknown>> {
  const lines = await waitFor(() => {
    const found = logLines(logs, fields);
    return found.length >= count && found;
  }, { what: `log line ${JSON.stringify(fields)}${count > 1 ? ` x${count}` : ''}` });
  return lines[lines.length - 1]!;
}

/** Registers closers during a test and runs them all (last first) in afterEach/afterAll. */
export class Cleanup {
  readonly #closers: (() => unknown)[] = [];

  add<T>(resource: T, close: (r: T) => unknown): T {
    this.#closers.push(() => close(resource));
    return resource;
  }

  async run(): Promise<void> {
    const errors: unknown[] = [];
    for (let fn = this.#closers.pop(); fn; fn = this.#closers.pop()) {
      try {
        await fn();
      } catch (err) {
        errors.push(err);
      }
    }
    if (errors.length > 0) throw new AggregateError(errors, 'cleanup failed');
  }
}

/** The counters that changed between two `stats.snapshot()`s, as differences (zeros left out). */
export function counterChanges(before: Record<string, number>, after: Record<string, number>): Record<string, number> {
  const changes: Record<string, number> = {};
  for (const name of new Set([...Object.keys(before), ...Object.keys(after)])) {
    const d = (after[name] ?? 0) - (before[name] ?? 0);
    if (d !== 0) changes[name] = d;
  }
  return changes;
}
