import { describe, expect, it } from 'vitest';
import { renderHtml } from '../src/report/html.ts';
import { renderText } from '../src/report/text.ts';
import type { BenchResult } from '../src/run.ts';
import { run } from './helpers.ts';

const doc = {
  events: [{ at: '30m', type: 'restart', backend: 'b', downtime: '2m' }],
  chains: [['stick-table', 'least-connections'], { name: 'rr </script><b>x</b>', select: ['round-robin'] }],
};

function embeddedData(html: string): BenchResult {
  const match = /<script type="application\/json" id="bench-data">([\s\S]*?)<\/script>/.exec(html);
  if (!match) throw new Error('no embedded data');
  return JSON.parse(match[1]!) as BenchResult;
}

describe('HTML report', () => {
  it('embeds the full result as JSON, equal to what --json prints', async () => {
    const result = await run(doc);
    const html = renderHtml(result);
    expect(embeddedData(html)).toEqual(JSON.parse(JSON.stringify(result)));
  });

  it('draws the charts and tables: a line per chain, bars per event, every number in the tables', async () => {
    const result = await run(doc);
    const html = renderHtml(result);
    expect(html.match(/<svg /g)).toHaveLength(4);
    // Balance over time: one path per chain in each of the two line charts.
    expect(html.match(/<path d="M/g)).toHaveLength(4);
    expect(html).toContain('restart b');
    const sticky = result.chains[0]!;
    expect(html).toContain(`<td>${sticky.totals.moved.toLocaleString('en-US')}</td>`);
    // Bars: one per chain and window, in both bar charts.
    expect(html.match(/<rect /g)).toHaveLength(2 * result.windows.length * result.chains.length);
  });

  it('is self-contained: nothing loaded from elsewhere, no executable script', async () => {
    const html = renderHtml(await run(doc));
    expect(html).not.toMatch(/<script(?! type="application\/json")/);
    expect(html).not.toMatch(/<link|<img|@import|url\(/);
    expect(html.replace(/xmlns="http:\/\/www\.w3\.org\/2000\/svg"/g, '')).not.toMatch(/https?:\/\//);
  });

  it('escapes names from the scenario', async () => {
    const html = renderHtml(await run(doc));
    expect(html).not.toContain('<b>x</b>');
    expect(html).toContain('rr &#60;/script&#62;&#60;b&#62;x&#60;/b&#62;');
    // The name inside the JSON cannot close the script element.
    expect(embeddedData(html).chains[1]!.name).toBe('rr </script><b>x</b>');
  });
});

describe('text report', () => {
  it('has the summary and per-event tables, one row per chain, aligned', async () => {
    const result = await run(doc);
    const text = renderText(result);
    const lines = text.split('\n');
    const header = lines.find((l) => l.startsWith('chain') && l.includes('sticky'))!;
    expect(header).toMatch(/chain\s+sticky\s+moved\s+min\s+max\/mean\s+\(worst\)\s+cv\s+ns\/select\s+B\/client/);
    const row = lines.find((l) => l.startsWith('stick-table+least-connections '))!;
    expect(row).toMatch(/100\.0%/);
    expect(row.length).toBe(header.length);
    expect(text).toContain('Sessions moved per event (moved / minimum):');
    expect(text).toMatch(/restart b/);
    // Measurements were skipped in this run: shown as "-" and "?", never as 0.
    expect(row).toMatch(/-\s+\?$/);
  });
});
