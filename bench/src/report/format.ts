import { formatDuration } from '@tether/core';
import type { BenchResult } from '../run.ts';

/** Number formats shared by the text and HTML reports, so both show the same figures. */

export function percent(value: number | undefined): string {
  return value === undefined ? '-' : `${(value * 100).toFixed(1)}%`;
}

export function ratio(value: number | undefined, digits = 2): string {
  return value === undefined ? '-' : value.toFixed(digits);
}

export function count(value: number): string {
  return value.toLocaleString('en-US');
}

export function ns(value: number | undefined): string {
  return value === undefined ? '-' : Math.round(value).toLocaleString('en-US');
}

export function bytes(value: number | undefined): string {
  return value === undefined ? '-' : String(Math.round(value));
}

export function duration(ms: number): string {
  return ms === 0 ? '0' : formatDuration(ms);
}

/** One paragraph describing the scenario, for the head of both reports. */
export function describeScenario(result: BenchResult): string[] {
  const s = result.scenario;
  const c = s.clients;
  const dist = c.distribution === 'zipf' ? `zipf s=${c.exponent}` : 'uniform';
  const backends = s.backends.map((b) => `${b.name}${b.weight !== 1 ? `×${b.weight}` : ''}${b.initiallyPresent ? '' : ' (added)'}`).join(', ');
  return [
    `${count(c.count)} clients (${dist}, ${percent(c.persistent)} persistent), backends ${backends}`,
    `${duration(s.durationMs)} in ${s.steps} steps of ${duration(s.stepMs)}; churn ${s.churn.ratePerHour}/client/h, offline ~${duration(s.churn.reconnectDelayMs)}; session expiry ${duration(s.sessionExpiryMs)}; seed ${s.seed}`,
    `events: ${s.events.length === 0 ? 'none' : s.events.map((e) => `${duration(e.atMs)} ${e.label}`).join('; ')}`,
  ];
}

/** Lays out rows as aligned columns: the first left-aligned, the others right-aligned. */
export function columns(header: readonly string[], rows: readonly (readonly string[])[]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ').trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)];
}
