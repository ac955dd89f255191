import { isAbsolute, resolve } from 'node:path';
import type { ChainEntry } from '@tether/core';
import type { ChainSpec } from './scenario.ts';

type Condition = NonNullable<ChainEntry['when']>;
const CONDITIONS: readonly Condition[] = ['always', 'persistent', 'clean'];

/** The chains compared when neither the scenario nor the command line names any. */
export const DEFAULT_CHAINS: readonly ChainSpec[] = [
  ['stick-table', 'least-connections'],
  ['rendezvous-hash', 'least-connections'],
  ['stick-table@persistent', 'least-connections'],
  ['round-robin'],
  ['random-two-choices'],
  ['least-connections'],
].map((names) => namedChain(names.map(parseShorthand)));

/**
 * A chain's display name: its plugin names joined by `+`, with a condition other than `always`
 * in brackets: `stick-table[persistent]+least-connections`.
 */
export function chainName(select: readonly ChainEntry[]): string {
  return select.map((e) => (e.when && e.when !== 'always' ? `${e.use}[${e.when}]` : e.use)).join('+');
}

export function namedChain(select: readonly ChainEntry[], name?: string): ChainSpec {
  return { name: name ?? chainName(select), select };
}

/**
 * A chain as written on the command line (`--chain`):
 * - `stick-table,least-connections`: plugin names (or paths) separated by commas; a name may end
 *   in `@persistent`, `@clean` or `@always` to set its condition (`stick-table@persistent`);
 * - `[...]`: a JSON list of entries exactly as in a config's `select`, for options
 *   (`[{"use":"stick-table","options":{"expire":"10m"}},"least-connections"]`).
 * Returns an error message instead of throwing, so the caller can report every bad flag at once.
 */
export function parseChainArg(text: string, baseDir: string): ChainSpec | string {
  const trimmed = text.trim();
  if (trimmed.startsWith('[')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(trimmed);
    } catch (err) {
      return `--chain ${trimmed}: not valid JSON (${(err as Error).message})`;
    }
    const problems: string[] = [];
    const entries = parseEntries(parsed, '--chain', baseDir, problems);
    return problems.length > 0 ? problems.join('; ') : namedChain(entries);
  }
  const names = trimmed.split(',').map((s) => s.trim()).filter(Boolean);
  if (names.length === 0) return '--chain needs at least one strategy, e.g. --chain stick-table,least-connections';
  return namedChain(names.map((n) => resolveUse(parseShorthand(n), baseDir)));
}

/** `name@when` → entry. A scoped package (`@acme/x`) keeps its leading `@`. */
function parseShorthand(text: string): ChainEntry {
  const match = /^(.+)@(always|persistent|clean)$/.exec(text);
  return match ? { use: match[1]!, options: {}, when: match[2] as Condition } : { use: text, options: {}, when: 'always' };
}

/**
 * Validates a list of chain entries (the shape of a config's `select`) and normalizes each to
 * `{ use, options, when }`. Problems are pushed with their path (`chains[1][0].when`).
 */
export function parseEntries(value: unknown, path: string, baseDir: string, problems: string[]): ChainEntry[] {
  if (!Array.isArray(value) || value.length === 0) {
    problems.push(`${path}: must be a non-empty list of plugin names or { use, options, when } objects`);
    return [];
  }
  const entries: ChainEntry[] = [];
  value.forEach((raw, i) => {
    const at = `${path}[${i}]`;
    if (typeof raw === 'string') {
      if (raw.trim() === '') problems.push(`${at}: must not be empty`);
      else entries.push(resolveUse(parseShorthand(raw.trim()), baseDir));
      return;
    }
    if (!raw || typeof raw !== 'object' || Array.isArray(raw)) {
      problems.push(`${at}: must be a plugin name or a { use, options, when } object`);
      return;
    }
    const { use, options, when, ...rest } = raw as Record<string, unknown>;
    const before = problems.length;
    if (typeof use !== 'string' || use.trim() === '') problems.push(`${at}.use: must name a plugin`);
    if (options !== undefined && (typeof options !== 'object' || options === null || Array.isArray(options))) problems.push(`${at}.options: must be a mapping`);
    if (when !== undefined && !CONDITIONS.includes(when as Condition)) problems.push(`${at}.when: must be one of ${CONDITIONS.join(', ')}`);
    if (Object.keys(rest).length > 0) problems.push(`${at}: unknown keys ${Object.keys(rest).join(', ')} (allowed: use, options, when)`);
    if (problems.length > before) return;
    entries.push(resolveUse({ use: use as string, options: (options ?? {}) as Record<string, unknown>, when: (when ?? 'always') as Condition }, baseDir));
  });
  return entries;
}

/**
 * A plugin given by relative path is relative to where it was written (the scenario file's
 * directory, or the working directory for the command line), not to wherever Tether resolves it.
 */
function resolveUse(entry: ChainEntry, baseDir: string): ChainEntry {
  return entry.use.startsWith('.') && !isAbsolute(entry.use) ? { ...entry, use: resolve(baseDir, entry.use) } : entry;
}

/** Gives each chain a unique name (`name`, `name #2`), so results never collide in the report. */
export function uniqueNames(chains: readonly ChainSpec[]): ChainSpec[] {
  const seen = new Map<string, number>();
  return chains.map((chain) => {
    const n = (seen.get(chain.name) ?? 0) + 1;
    seen.set(chain.name, n);
    return n === 1 ? chain : { ...chain, name: `${chain.name} #${n}` };
  });
}
