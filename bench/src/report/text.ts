import type { BenchResult } from '../run.ts';
import { columns, describeScenario } from './format.ts';
import { movedTable, noteLines, stickinessTable, summaryTable, type Table } from './summary.ts';

/** The plain-text report printed at the end of a run: the scenario, then the tables. */
export function renderText(result: BenchResult): string {
  const out: string[] = [`scenario ${result.scenario.name} (${result.scenario.source})`, ...describeScenario(result).map((l) => `  ${l}`), ''];
  for (const table of [summaryTable(result), movedTable(result), stickinessTable(result)]) out.push(...renderTable(table), '');
  out.push(...noteLines(result));
  return `${out.join('\n').trimEnd()}\n`;
}

function renderTable(table: Table): string[] {
  return [`${table.title}:`, ...columns(table.header, table.rows), ...wrap(table.note, 100).map((l) => `  ${l}`)];
}

/** Splits a note into lines of at most `width` characters, at spaces. */
function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/)) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(line);
  return lines;
}
