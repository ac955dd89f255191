import type { Backend, TableView } from '@tether/core';
import { parse, UsageError } from '../args.ts';
import { adminUrl, getJson } from './admin-url.ts';

const FLAGS = {
  admin: { type: 'string' },
  config: { type: 'string', short: 'c' },
  json: { type: 'boolean' },
  limit: { type: 'string' },
} as const;

/** `tether table show`: the live table of a running balancer, printed like HAProxy's `show table`. */
export async function tableShow(argv: string[]): Promise<void> {
  const { values } = parse(argv, FLAGS);
  if (values.limit !== undefined && !/^\d+$/.test(String(values.limit))) throw new UsageError('--limit must be a whole number');
  const base = adminUrl(values);
  const query = values.limit !== undefined ? `?limit=${String(values.limit)}` : '';
  const { tables } = await getJson<{ tables: TableView[] }>(`${base}/table${query}`);
  if (values.json) {
    process.stdout.write(`${JSON.stringify({ tables }, null, 2)}\n`);
    return;
  }
  const { backends } = await getJson<{ backends: Backend[] }>(`${base}/backends`);
  const serverId = new Map(backends.map((b, i) => [b.id, i + 1]));
  if (tables.length === 0) process.stdout.write('# no strategy in the select chain keeps a table\n');
  for (const table of tables) {
    process.stdout.write(`# table: ${table.name}, type: ${table.type}, size:${table.size}, used:${table.used}\n`);
    for (const e of table.entries) {
      process.stdout.write(`key=${quote(e.key)} use=${e.use} exp=${e.expiresInMs} server_id=${serverId.get(e.backend) ?? 0} server_key=${e.backend} hits=${e.hits}\n`);
    }
  }
}

/** Keys are untrusted client input: keep each entry on one line and visible. */
function quote(key: string): string {
  return /^[\x21-\x7e]*$/.test(key) ? key : JSON.stringify(key);
}
