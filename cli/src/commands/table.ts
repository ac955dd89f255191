import type { Backend, TableView } from '@tether/core';
import { expectPositionals, parseCommand, UsageError } from '../args.ts';
import { print, quote } from '../output.ts';
import { COMMAND_USAGE } from '../usage.ts';
import { AdminClient, ADMIN_FLAGS } from './admin-client.ts';

/*
 * `tether table show|set|delete|clear`: a running balancer's stick table, read and edited over
 * the admin API like HAProxy's `show table`, `set table` and `clear table`.
 */

const SHOW_FLAGS = { ...ADMIN_FLAGS, limit: { type: 'string' }, cursor: { type: 'string' }, all: { type: 'boolean' }, key: { type: 'string' } } as const;

/** `tether table show`: printed like HAProxy's `show table`. */
export async function tableShow(argv: string[]): Promise<void> {
  const usage = COMMAND_USAGE['table show'];
  const args = parseCommand(argv, usage, SHOW_FLAGS);
  if (!args) return;
  const { values } = args;
  expectPositionals('table show', args.positionals, []);
  if (values.limit !== undefined && !/^\d+$/.test(String(values.limit))) throw new UsageError('--limit must be a whole number');
  if (values.all && values.cursor !== undefined) throw new UsageError('--all reads every page from the first: drop --cursor');
  if (values.key !== undefined && (values.all || values.cursor !== undefined)) throw new UsageError('--key shows one entry: drop --all and --cursor');
  const admin = AdminClient.from(values);
  const page = (cursor: string | undefined): Promise<{ tables: TableView[] }> => {
    const params = new URLSearchParams();
    if (values.limit !== undefined) params.set('limit', String(values.limit));
    if (cursor !== undefined) params.set('cursor', cursor);
    if (typeof values.key === 'string') params.set('key', values.key);
    const query = params.size > 0 ? `?${params}` : '';
    return admin.get<{ tables: TableView[] }>(`/table${query}`);
  };
  let { tables } = await page(values.cursor as string | undefined);
  if (values.all) tables = await followPages(tables, page);
  if (values.json) return print({ tables });
  const { backends } = await admin.get<{ backends: Backend[] }>('/backends');
  const serverId = new Map(backends.map((b, i) => [b.id, i + 1]));
  if (tables.length === 0) process.stdout.write('# no strategy in the select chain keeps a table\n');
  for (const table of tables) {
    const store = table.store && table.store !== 'memory' ? `, store: ${table.store}` : '';
    process.stdout.write(`# table: ${table.name}, type: ${table.type}, size:${table.size}, used:${table.used}${store}\n`);
    for (const e of table.entries) {
      process.stdout.write(`key=${quote(e.key)} use=${e.use} exp=${e.expiresInMs} server_id=${serverId.get(e.backend) ?? 0} server_key=${e.backend} hits=${e.hits}${e.flags?.length ? ` flags=${e.flags.join(',')}` : ''}\n`);
    }
    if (table.cursor !== undefined) process.stdout.write(`# more entries: tether table show --cursor ${table.cursor} (or --all)\n`);
  }
}

/** Pages of a shared table (`--all`) are read until the end, but never more than this many. */
const MAX_PAGES = 10_000;

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

/** `tether table set KEY BACKEND` (PUT /table/entries/KEY). */
export async function tableSet(argv: string[]): Promise<void> {
  const args = parseCommand(argv, COMMAND_USAGE['table set'], ADMIN_FLAGS);
  if (!args) return;
  const [key, backend] = expectPositionals('table set', args.positionals, ['KEY', 'BACKEND']);
  const result = await AdminClient.from(args.values).send<{ key: string; backend: string; tables: number }>('PUT', `/table/entries/${encodeURIComponent(key!)}`, { backend });
  if (args.values.json) return print(result);
  process.stdout.write(`${quote(key!)}: now on ${backend!}\n`);
}

/** `tether table delete KEY` (DELETE /table/entries/KEY). */
export async function tableDelete(argv: string[]): Promise<void> {
  const args = parseCommand(argv, COMMAND_USAGE['table delete'], ADMIN_FLAGS);
  if (!args) return;
  const [key] = expectPositionals('table delete', args.positionals, ['KEY']);
  const result = await AdminClient.from(args.values).send<{ key: string; deleted: boolean }>('DELETE', `/table/entries/${encodeURIComponent(key!)}`);
  if (args.values.json) return print(result);
  process.stdout.write(`${quote(key!)}: deleted\n`);
}

const CLEAR_FLAGS = { ...ADMIN_FLAGS, backend: { type: 'string' } } as const;

/** `tether table clear [--backend NAME]` (POST /table/clear). */
export async function tableClear(argv: string[]): Promise<void> {
  const args = parseCommand(argv, COMMAND_USAGE['table clear'], CLEAR_FLAGS);
  if (!args) return;
  expectPositionals('table clear', args.positionals, []);
  const backend = args.values.backend as string | undefined;
  const result = await AdminClient.from(args.values).send<{ cleared: number }>('POST', '/table/clear', backend !== undefined ? { backend } : {});
  if (args.values.json) return print(result);
  const entries = `${result.cleared} ${result.cleared === 1 ? 'entry' : 'entries'}`;
  process.stdout.write(backend !== undefined ? `cleared ${entries} on ${backend}\n` : `cleared ${entries}\n`);
}
