import type { ReloadResult } from '@tether/core';
import { expectPositionals, parseCommand } from '../args.ts';
import { print } from '../output.ts';
import { COMMAND_USAGE } from '../usage.ts';
import { AdminApiError, AdminClient, ADMIN_FLAGS } from './admin-client.ts';

/**
 * `tether reload`: asks a running balancer to read its configuration again and apply it in place
 * (the same as SIGHUP). Prints what changed, or every error and exits 1 (the balancer then keeps
 * running on its old configuration).
 */
export async function reloadCommand(argv: string[]): Promise<void> {
  const args = parseCommand(argv, COMMAND_USAGE.reload, ADMIN_FLAGS);
  if (!args) return;
  expectPositionals('reload', args.positionals, []);
  let result: ReloadResult;
  try {
    result = await AdminClient.from(args.values).send<ReloadResult>('POST', '/reload');
  } catch (err) {
    // 422: the configuration was read and refused; the answer lists why.
    if (!(err instanceof AdminApiError) || err.status !== 422) throw err;
    result = JSON.parse(err.body) as ReloadResult;
  }
  if (args.values.json) print(result);
  else printResult(result);
  if (!result.ok) process.exitCode = 1;
}

function printResult(r: ReloadResult): void {
  const out = r.ok ? process.stdout : process.stderr;
  out.write(r.ok ? `reloaded: generation ${r.generation} is running\n` : `reload failed: generation ${r.generation} keeps running\n`);
  for (const e of r.errors) out.write(`  error: ${e}\n`);
  for (const c of r.changes) out.write(`  ${c}\n`);
  if (r.ok && r.changes.length === 0) out.write('  nothing changed\n');
  for (const n of r.needRestart) out.write(`  needs a restart (running value kept): ${n}\n`);
  for (const w of r.workers ?? []) out.write(`  worker ${w.worker}: ${w.ok ? `generation ${w.generation}` : `failed, keeps generation ${w.generation}`}\n`);
}
