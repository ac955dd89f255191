const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const PATTERN = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?$/;

/**
 * Parses a duration the way HAProxy writes them: a number of milliseconds, or a number with a
 * unit (`500ms`, `5s`, `30m`, `1h`, `1d`). Returns undefined when the text is not a duration.
 */
export function parseDuration(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? value : undefined;
  if (typeof value !== 'string') return undefined;
  const match = PATTERN.exec(value.trim());
  if (!match) return undefined;
  return Math.round(Number(match[1]) * UNITS[match[2] ?? 'ms']!);
}

export function formatDuration(ms: number): string {
  if (ms % 3_600_000 === 0 && ms > 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0 && ms > 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0 && ms > 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}

/** Bounds of a duration option, in milliseconds. */
export interface DurationBounds {
  readonly min?: number;
  readonly max?: number;
}

const HOW = 'milliseconds, or a number with ms, s, m, h or d (e.g. "30s")';

/**
 * Why `value` is not an acceptable duration, or undefined when it is: one wording for every
 * duration option of core and of plugins, so an operator reads the same message everywhere.
 */
export function durationProblem(value: unknown, bounds: DurationBounds = {}): string | undefined {
  const { min, max } = bounds;
  const range =
    min !== undefined && max !== undefined ? ` from ${formatDuration(min)} to ${formatDuration(max)}`
    : min !== undefined ? ` of at least ${formatDuration(min)}`
    : max !== undefined ? ` of at most ${formatDuration(max)}`
    : '';
  const ms = parseDuration(value);
  const fits = ms !== undefined && (min === undefined || ms >= min) && (max === undefined || ms <= max);
  return fits ? undefined : `must be a duration${range}: ${HOW}`;
}

/**
 * A convict `format` for a duration option (core's schema and plugins' option schemas alike):
 * `format: durationFormat({ min: 1 })`. Read the value with `parseDuration`.
 */
export function durationFormat(bounds: DurationBounds = {}): (value: unknown) => void {
  return (value) => {
    const problem = durationProblem(value, bounds);
    if (problem) throw new Error(problem);
  };
}
