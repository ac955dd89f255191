/**
 * Messages on the invalidation channel (`<prefix>invalidations`): what changed in Redis that the
 * instances' caches may hold otherwise. Every instance (and every worker) subscribes and applies
 * them to its own cache, its own messages included (they are idempotent).
 *
 *   ["s", key, backend]   key K is now on backend B (a redispatch moved it, or an operator set it)
 *   ["d", key]            key K was deleted (operator)
 *   ["c", backend|null]   every entry (or every entry on backend B) was deleted (operator clear)
 *
 * New keys are not announced: an instance that does not cache a key asks Redis when it needs it.
 */
export type Invalidation =
  | { readonly op: 'set'; readonly key: string; readonly backend: string }
  | { readonly op: 'delete'; readonly key: string }
  | { readonly op: 'clear'; readonly backend: string | undefined };

export function channelName(prefix: string): string {
  return `${prefix}invalidations`;
}

export function encodeInvalidation(m: Invalidation): string {
  switch (m.op) {
    case 'set':
      return JSON.stringify(['s', m.key, m.backend]);
    case 'delete':
      return JSON.stringify(['d', m.key]);
    case 'clear':
      return JSON.stringify(['c', m.backend ?? null]);
  }
}

/** The message, or undefined for anything else on the channel (another version, a stray PUBLISH). */
export function decodeInvalidation(text: string): Invalidation | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!Array.isArray(value)) return undefined;
  const [op, a, b] = value as unknown[];
  if (op === 's' && typeof a === 'string' && typeof b === 'string') return { op: 'set', key: a, backend: b };
  if (op === 'd' && typeof a === 'string') return { op: 'delete', key: a };
  if (op === 'c' && (a === null || typeof a === 'string')) return { op: 'clear', backend: a ?? undefined };
  return undefined;
}
