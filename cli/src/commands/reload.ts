import { TetherError, type ReloadResult } from '@tether/core';
import { parse } from '../args.ts';
import { adminUrl } from './admin-url.ts';

const FLAGS = { admin: { type: 'string' }, config: { type: 'string', short: 'c' }, json: { type: 'boolean' } } as const;

/**
 * `tether reload`: asks a running balancer to read its configuration again and apply it in place
 * (the same as SIGHUP). Prints what changed, or every error and exits 1 (the balancer then keeps
 * running on its old configuration).
 */
export async function reloadCommand(argv: string[]): Promise<void> {
  const { values } = parse(argv, FLAGS);
  const url = `${adminUrl(values)}/reload`;
  let res: Response;
  try {
    res = await fetch(url, { method: 'POST' });
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message;
    throw new TetherError('TETHER_ERR_ADMIN', `cannot reach the admin API at ${url} (${cause}); is tether running with --admin?`);
  }
  const text = await res.text();
  let result: ReloadResult;
  try {
    result = JSON.parse(text) as ReloadResult;
  } catch {
    throw new TetherError('TETHER_ERR_ADMIN', `admin API ${url} answered ${res.status}: ${text}`);
  }
  if (!Array.isArray(result.errors)) throw new TetherError('TETHER_ERR_ADMIN', `admin API ${url} answered ${res.status}: ${(result as { error?: string }).error ?? text}`);
  if (values.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  else printResult(result);
  if (!result.ok) process.exitCode = 1;
}

function printResult(r: ReloadResult): void {
  const out = r.ok ? process.stdout : process.stderr;
  if (r.ok) out.write(`reloaded: generation ${r.generation} is running\n`);
  else out.write(`reload failed: generation ${r.generation} keeps running\n`);
  for (const e of r.errors) out.write(`  error: ${e}\n`);
  for (const c of r.changes) out.write(`  ${c}\n`);
  if (r.ok && r.changes.length === 0) out.write('  nothing changed\n');
  for (const n of r.needRestart) out.write(`  needs a restart (running value kept): ${n}\n`);
  for (const w of r.workers ?? []) out.write(`  worker ${w.worker}: ${w.ok ? `generation ${w.generation}` : `failed, keeps generation ${w.generation}`}\n`);
}
