import type { Backend, TableView } from '@tether/core';
import { expectPositionals, parseCommand, UsageError } from '../args.ts';
import { print, quote } from '../output.ts';
import { COMMAND_USAGE } from '../usage.ts';
import { AdminClient, ADMIN_FLAGS } from './admin-client.ts';

/*
 * `tether table show|set|delete|clear`: a running balancer's stick table, read and edited over
 * the admin API like HAProxy's `show table`, `set table` and `clear table`.
 */

const SHOW_FLAGS = { ...ADMIN_FLAGS, limit: { type: 'string' } } as const;

/** `tether table show`: printed like HAProxy's `show table`. */
export async function tableShow(argv: string[]): Promise<void> {
  const args = parseCommand(argv, COMMAND_USAGE['table show'], SHOW_FLAGS);
  if (!args) return;
  const { values } = args;
  expectPositionals('table show', args.positionals, []);
  if (values.limit !== undefined && !/^\d+$/.test(String(values.limit))) throw new UsageError('--limit must be a whole number');
  const admin = AdminClient.from(values);
  const query = values.limit !== undefined ? `?limit=${String(values.limit)}` : '';
  const { tables } = await admin.get<{ tables: TableView[] }>(`/table${query}`);
  if (values.json) return print({ tables });
  const { backends } = await admin.get<{ backends: Backend[] }>('/backends');
  const serverId = new Map(backends.map((b, i) => [b.id, i + 1]));
  if (tables.length === 0) process.stdout.write('# no strategy in the select chain keeps a table\n');
  for (const table of tables) {
    process.stdout.write(`# table: ${table.name}, type: ${table.type}, size:${table.size}, used:${table.used}\n`);
    for (const e of table.entries) {
      process.stdout.write(`key=${quote(e.key)} use=${e.use} exp=${e.expiresInMs} server_id=${serverId.get(e.backend) ?? 0} server_key=${e.backend} hits=${e.hits}\n`);
    }
  }
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
