import type { Backend, TableView } from '@tether/core';
import { parse, UsageError } from '../args.ts';
import { adminUrl, getJson } from './admin-url.ts';

const FLAGS = {
  admin: { type: 'string' },
  config: { type: 'string', short: 'c' },
  json: { type: 'boolean' },
  limit: { type: 'string' },
  cursor: { type: 'string' },
  all: { type: 'boolean' },
  key: { type: 'string' },
} as const;

/** Pages of a shared table (`--all`) are read until the end, but never more than this many. */
const MAX_PAGES = 10_000;

/**
 * `tether table show`: the live table of a running balancer, printed like HAProxy's `show table`.
 * A table in a shared store (Redis) is read in pages: `--cursor C` continues where a page ended,
 * `--all` reads every page.
 */
export async function tableShow(argv: string[]): Promise<void> {
  const { values } = parse(argv, FLAGS);
  if (values.limit !== undefined && !/^\d+$/.test(String(values.limit))) throw new UsageError('--limit must be a whole number');
  if (values.all && values.cursor !== undefined) throw new UsageError('--all reads every page from the first: drop --cursor');
  if (values.key !== undefined && (values.all || values.cursor !== undefined)) throw new UsageError('--key shows one entry: drop --all and --cursor');
  const base = adminUrl(values);
  const page = (cursor: string | undefined): Promise<{ tables: TableView[] }> => {
    const params = new URLSearchParams();
    if (values.limit !== undefined) params.set('limit', String(values.limit));
    if (cursor !== undefined) params.set('cursor', cursor);
    if (typeof values.key === 'string') params.set('key', values.key);
    const query = params.size > 0 ? `?${params}` : '';
    return getJson<{ tables: TableView[] }>(`${base}/table${query}`);
  };
  let { tables } = await page(values.cursor as string | undefined);
  if (values.all) tables = await followPages(tables, page);
  if (values.json) {
    process.stdout.write(`${JSON.stringify({ tables }, null, 2)}\n`);
    return;
  }
  const { backends } = await getJson<{ backends: Backend[] }>(`${base}/backends`);
  const serverId = new Map(backends.map((b, i) => [b.id, i + 1]));
  if (tables.length === 0) process.stdout.write('# no strategy in the select chain keeps a table\n');
  for (const table of tables) {
    const store = table.store && table.store !== 'memory' ? `, store: ${table.store}` : '';
    process.stdout.write(`# table: ${table.name}, type: ${table.type}, size:${table.size}, used:${table.used}${store}\n`);
    for (const e of table.entries) {
      process.stdout.write(`key=${quote(e.key)} use=${e.use} exp=${e.expiresInMs} server_id=${serverId.get(e.backend) ?? 0} server_key=${e.backend} hits=${e.hits}\n`);
    }
    if (table.cursor !== undefined) process.stdout.write(`# more entries: tether table show --cursor ${table.cursor} (or --all)\n`);
  }
}

/**
 * Reads the following pages and appends their entries to the first page's tables. The cursor goes
 * to every table; only those that said "more follows" last time take the entries of the next page.
 */
async function followPages(first: TableView[], page: (cursor: string) => Promise<{ tables: TableView[] }>): Promise<TableView[]> {
  const tables = first.map((t) => ({ ...t, entries: [...t.entries] }));
  let paging = first.map((t) => t.cursor !== undefined);
  let cursor = first.find((t) => t.cursor !== undefined)?.cursor;
  for (let pages = 1; cursor !== undefined && pages < MAX_PAGES; pages++) {
    const next = (await page(cursor)).tables;
    next.forEach((t, i) => {
      if (paging[i]) tables[i]?.entries.push(...t.entries);
    });
    paging = next.map((t, i) => paging[i] === true && t.cursor !== undefined);
    cursor = next.find((t, i) => paging[i] && t.cursor !== undefined)?.cursor;
  }
  return tables.map(({ cursor: _cursor, ...t }) => t);
}

/** Keys are untrusted client input: keep each entry on one line and visible. */
function quote(key: string): string {
  return /^[\x21-\x7e]*$/.test(key) ? key : JSON.stringify(key);
}
