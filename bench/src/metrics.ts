import type { Backend } from '@tether/core';

/**
 * What happened to sessions during one window (see timeline.ts). Only clients with a persistent
 * session count towards `sessionReconnects`, `kept`, `moved` and `forced`: a clean client has
 * nothing to lose by landing elsewhere.
 */
export interface WindowCounts {
  /** Connections of clients that had connected before (clean or persistent). */
  reconnects: number;
  /** Reconnects of persistent clients whose session was still alive on some backend. */
  sessionReconnects: number;
  /** ... that landed on the backend holding their session. */
  kept: number;
  /** ... that landed elsewhere: the session moved (its state on the old broker is lost). */
  moved: number;
  /**
   * ... whose session's backend could not take them (removed, down, drained): these had to move
   * whatever the strategy. The minimum any strategy could achieve for this window.
   */
  forced: number;
  /** Reconnects of persistent clients after their session had expired (nothing left to keep). */
  expired: number;
  /** Connection attempts with no backend available (retried the next step). */
  refused: number;
}

export function emptyCounts(): WindowCounts {
  return { reconnects: 0, sessionReconnects: 0, kept: 0, moved: 0, forced: 0, expired: 0, refused: 0 };
}

export function addCounts(into: WindowCounts, from: WindowCounts): WindowCounts {
  for (const k of Object.keys(into) as (keyof WindowCounts)[]) into[k] += from[k];
  return into;
}

/**
 * Share of reconnects that kept their session, among those that could have: moves forced by an
 * unavailable backend are left out, so 1 means "never moved a session it did not have to".
 * Undefined when no reconnect could have kept its session.
 */
export function stickiness(c: WindowCounts): number | undefined {
  const possible = c.sessionReconnects - c.forced;
  return possible > 0 ? c.kept / possible : undefined;
}

/** Balance of one moment: how evenly live connections (per unit of weight) spread over ready backends. */
export interface BalanceSample {
  /** Most loaded backend / mean load; 1 is perfect. NaN when no connection is placed. */
  readonly maxMean: number;
  /** Coefficient of variation (standard deviation / mean) of the loads; 0 is perfect. */
  readonly cv: number;
}

export function balanceOf(backends: readonly Backend[]): BalanceSample {
  const n = backends.length;
  if (n === 0) return { maxMean: NaN, cv: NaN };
  let sum = 0;
  let max = 0;
  for (const b of backends) {
    const load = b.activeConnections / b.weight;
    sum += load;
    if (load > max) max = load;
  }
  const mean = sum / n;
  if (mean === 0) return { maxMean: NaN, cv: NaN };
  let squares = 0;
  for (const b of backends) squares += (b.activeConnections / b.weight - mean) ** 2;
  return { maxMean: max / mean, cv: Math.sqrt(squares / n) / mean };
}

export interface SeriesSummary {
  /** Mean over the steps where it is defined. */
  readonly mean: number | undefined;
  /** Worst (highest) value over the run. */
  readonly worst: number | undefined;
  /** Value at the last step. */
  readonly final: number | undefined;
}

export function summarize(series: ArrayLike<number>): SeriesSummary {
  let sum = 0;
  let count = 0;
  let worst = -Infinity;
  for (let i = 0; i < series.length; i++) {
    const v = series[i]!;
    if (Number.isNaN(v)) continue;
    sum += v;
    count++;
    if (v > worst) worst = v;
  }
  const last = series.length > 0 ? series[series.length - 1]! : NaN;
  return { mean: count > 0 ? sum / count : undefined, worst: count > 0 ? worst : undefined, final: Number.isNaN(last) ? undefined : last };
}
