import type { BenchResult, ChainResult } from '../run.ts';
import { bytes, count, ns, percent, ratio } from './format.ts';

/**
 * The tables both reports show, as rows of strings: one summary row per chain, and per-window
 * tables (chains as rows, windows as columns) for moves and stickiness.
 */
export interface Table {
  readonly title: string;
  readonly note: string;
  readonly header: readonly string[];
  readonly rows: readonly (readonly string[])[];
}

export function summaryTable(result: BenchResult): Table {
  return {
    title: 'Summary',
    note: 'sticky: reconnects that kept their session, of those that could (its backend was available). moved/min: persistent sessions moved by reconnects vs the minimum (their backend was removed, down or draining). max/mean and cv: balance of live connections over ready backends, averaged over time (worst in brackets). ns/select: measured time of one chain select. B/client: heap per remembered client (key string excluded).',
    header: ['chain', 'sticky', 'moved', 'min', 'max/mean', '(worst)', 'cv', 'ns/select', 'B/client'],
    rows: result.chains.map((c) => [
      c.name,
      percent(c.totals.stickiness),
      count(c.totals.moved),
      count(c.totals.forced),
      ratio(c.balance.maxMean.mean),
      `(${ratio(c.balance.maxMean.worst)})`,
      ratio(c.balance.cv.mean),
      ns(c.measured.nsPerSelection),
      memoryCell(c),
    ]),
  };
}

function memoryCell(c: ChainResult): string {
  const m = c.measured.memory;
  if (m.bytesPerEntry !== undefined) return bytes(m.bytesPerEntry);
  return m.note.startsWith('keeps no') ? 'no table' : '?';
}

export function movedTable(result: BenchResult): Table {
  return {
    title: 'Sessions moved per event (moved / minimum)',
    note: 'Each event is measured from its time until the next event. The minimum counts sessions whose backend could not take them back.',
    header: ['chain', ...result.windows.map((w) => w.label)],
    rows: result.chains.map((c) => [c.name, ...c.windows.map((w) => `${count(w.moved)} / ${count(w.forced)}`)]),
  };
}

export function stickinessTable(result: BenchResult): Table {
  return {
    title: 'Stickiness per event',
    note: 'Share of reconnects that landed on the backend holding their session, of those whose backend was available.',
    header: ['chain', ...result.windows.map((w) => w.label)],
    rows: result.chains.map((c) => [c.name, ...c.windows.map((w) => percent(w.stickiness))]),
  };
}

export function noteLines(result: BenchResult): string[] {
  const notes: string[] = [];
  if (result.chains.some((c) => c.measured.memory.note.startsWith('not measured: run node'))) {
    notes.push('B/client "?": memory is measured only when global.gc is exposed: NODE_OPTIONS=--expose-gc tether bench strategies ...');
  }
  return notes;
}
